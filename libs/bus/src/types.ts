// Public types of the bus. The replication, coordinator and agent code program against
// these only, so the broker behind them (NATS JetStream or Kafka) is configuration.

export type BusKind = 'nats' | 'kafka';

export interface BusLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface BusOptions {
  kind: BusKind;
  /** NATS URLs (`nats://host:port`) or Kafka `host:port` brokers. */
  servers: string[];
  prefix?: string;
  clientId: string;
  /** Largest payload publish accepts; default 4 MiB (brokers are configured for 8 MB). */
  maxPayloadBytes?: number;
  log?: BusLogger;
  reconnect?: { initialMs?: number; maxMs?: number };
  /** How long publish waits for the broker's acknowledgement; default 10 s. */
  publishTimeoutMs?: number;
}

export interface PublishOptions {
  /** Idempotency id, e.g. `messageId(...)`; duplicates on the same subject are dropped. */
  id: string;
  /** Ordering/partition key, e.g. the source region. */
  key?: string;
}

export interface PublishAck {
  subject: string;
  id: string;
  duplicate: boolean;
  seq?: string;
}

export interface BusMessage {
  subject: string;
  data: Uint8Array;
  id?: string;
  key?: string;
  /** 1 on first delivery; grows with redeliveries and in-place retries. */
  deliveryCount: number;
  /** Broker position: stream sequence (NATS) or `partition:offset` (Kafka). */
  seq: string;
  /** What `decodeCheck` returned for this message (decoded once, handed through), if it returned anything. */
  decoded?: unknown;
}

export interface ConsumeOptions {
  subject: string;
  durable: string;
  /** Prefetch bound (messages fetched but not yet acknowledged); default 256. */
  maxInFlight?: number;
  /** Handler attempts before the message is dead-lettered; default 5. */
  maxDeliveries?: number;
  handler: (msg: BusMessage) => Promise<void>;
  /**
   * Optional batch mode: called with up to `maxBatch` consecutive messages of one ordering
   * unit that are already fetched (in order); they are acknowledged only after it resolved.
   * If it throws, the same messages are handed to `handler` one by one (retry in place,
   * a poison message is isolated and dead-lettered alone), so it must be idempotent.
   */
  batchHandler?: (msgs: BusMessage[]) => Promise<void>;
  /** Largest batch handed to `batchHandler`; default 64. */
  maxBatch?: number;
  /**
   * A batch stops growing once its payloads reach this many bytes (it always holds at
   * least one message); default 4 MiB. Bounds the memory of decoding and applying one
   * batch when messages are large (1,000-row transactions), independent of maxBatch.
   */
  maxBatchBytes?: number;
  signal: AbortSignal;
  onDeadLetter?: (msg: BusMessage, reason: string) => void;
  /**
   * Throws for a payload that can never be handled (pass `codec.decode`): dead-lettered at
   * once. What it returns is handed to the handlers as `msg.decoded` (decode once).
   */
  decodeCheck?: (data: Uint8Array) => unknown;
}

export interface ConsumerStats {
  delivered: number;
  acked: number;
  deadLettered: number;
  inFlight: number;
  /**
   * True while another process consumes this durable and this one waits to take over (a
   * rolling update's overlap). NATS: another pull client holds the pin; Kafka: the group
   * assigned this member no partition of the subject.
   */
  standby: boolean;
}

export interface Consumer {
  /** Resolves after the signal aborted and the consumer drained; never rejects. */
  readonly done: Promise<void>;
  stats(): ConsumerStats;
}

export interface KeyValue {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  keys(): Promise<string[]>;
}

export interface Topology {
  regions: string[];
}

export interface BusHealth {
  connected: boolean;
  lastError?: string;
}

export interface Bus {
  readonly kind: BusKind;
  connect(): Promise<void>;
  provision(topology: Topology): Promise<void>;
  publish(subject: string, data: Uint8Array, opts: PublishOptions): Promise<PublishAck>;
  consume(opts: ConsumeOptions): Consumer;
  kv(bucket: string): Promise<KeyValue>;
  health(): BusHealth;
  close(): Promise<void>;
}

/** Header names carried on every message (NATS headers, Kafka record headers). */
export const HEADERS = {
  id: 'Regionsync-Msg-Id',
  key: 'Regionsync-Key',
  dlqReason: 'Regionsync-Dlq-Reason',
  dlqSubject: 'Regionsync-Dlq-Original-Subject',
  dlqSeq: 'Regionsync-Dlq-Original-Seq',
} as const;
