export { resolveLayout, parseRegions, findRepoRoot, DEFAULT_REGIONS, type StackLayout } from './config.js';
export { up, down, status, env, type ServiceStatus } from './stack.js';
export { stackEnv, type StackEnv, type RegionEnv, type S3Endpoint } from './stack-env.js';
export { setProxyEnabled, resetProxies, proxySpecs, addToxic, removeToxic, type Toxic } from './services/toxiproxy.js';
export { PG_SETTINGS, startScratchPostgres, stopScratchPostgres } from './services/postgres.js';
export { VERSIONS } from './versions.js';
export { ensureStack, cutLink, restoreLink, dropReplies, restoreReplies, crashDatabase, shutDownDatabase, startDatabase } from './test-support.js';
