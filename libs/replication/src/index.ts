export { Capture, type CaptureOptions, type ChangePublisher, type EgressFilter, errInfo } from './capture.js';
export { Applier, type ApplyOptions, type IngressFilter, type ApplyOutcome } from './apply.js';
export { setupDatabase, checkPrerequisites, type TableConfig, type SetupOptions } from './setup.js';
export { loadTableInfo, schemaFingerprint, type TableInfo } from './table-info.js';
export { TransactionAssembler, type AssembledTransaction, type PgMessage } from './assembler.js';
export { createReplicationMetrics, type ReplicationMetrics } from './metrics.js';
export { slotName, originName, databaseOf, PUBLICATION, META_SCHEMA, qualify, pkText } from './sql-names.js';
export { backoff, sleep } from './retry.js';
