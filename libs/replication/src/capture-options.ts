import type { Logger } from 'pino';
import type { makeEnvelope, RowChange } from '@regionsync/protocol';
import type { AssembledTransaction } from './assembler.js';
import type { ReplicationMetrics } from './metrics.js';
import type { TableName } from './sql-names.js';

/** What capture needs from the bus: a publish that resolves once the broker stored it. */
export interface ChangePublisher {
  publish(subject: string, data: Uint8Array, opts: { id: string; key?: string }): Promise<unknown>;
}
export interface ChangeCodec {
  encode(envelope: ReturnType<typeof makeEnvelope>): Uint8Array;
  readonly maxBytes: number;
}

/** Per destination: the row to send (possibly redacted), or null to withhold it. */
export type EgressFilter = (row: RowChange, destination: string) => RowChange | null;

export interface CaptureOptions {
  region: string;
  destinations: string[];
  prefix?: string;
  connectionString: string;
  tables: TableName[];
  publisher: ChangePublisher;
  codec: ChangeCodec;
  log: Logger;
  metrics?: ReplicationMetrics;
  egress?: EgressFilter;
  /** Rows per message before a transaction is streamed out in chunks. */
  chunkRows?: number;
  /** Transactions captured but not yet confirmed by the bus before reading pauses. */
  maxPendingTransactions?: number;
  /** Rows of those transactions before reading pauses: bounds the memory they hold. */
  maxPendingRows?: number;
  /** Emit a logical message this often when idle, so an idle slot keeps advancing. */
  idleHeartbeatMs?: number;
  /** Awaited with a transaction's publishes before its slot acknowledgement (e.g. audit flush). */
  ackBarrier?: () => Promise<void>;
  /** Local side effects after a local or applied transaction is seen (cache, content). */
  onTransaction?: (tx: AssembledTransaction) => void;
}
