export { Cluster, waitUntil, type ClusterOptions, type AgentHandle, type Broker } from './cluster.js';
export { DEMO_SCHEMA_SQL, DEMO_TABLES, checksumSql } from './demo-schema.js';
