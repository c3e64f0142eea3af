// `npm run demo`: the multi-region demo. Until agents run, it brings the real stack up
// and prints what is running and where.
import { status, up } from '@regionsync/stack';

const started = Date.now();
const env = await up({ log: (m) => console.error(`[demo] ${m}`) });
console.log(`regionsync stack up in ${((Date.now() - started) / 1000).toFixed(1)} s for regions ${env.regionNames.join(', ')}`);
for (const s of await status()) console.log(`${s.healthy ? 'healthy  ' : 'UNHEALTHY'}  ${s.service}${s.region ? ` ${s.region}` : ''}`);
for (const r of env.regionNames) console.log(`${r.padEnd(14)} db ${env.regions[r]!.databaseUrl}  redis ${env.regions[r]!.redisUrl}`);
