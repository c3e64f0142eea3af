// Kafka adapter (kafkajs). Durability: acks=-1 on an idempotent producer; publishes that
// are in flight together go out in one sendBatch (group commit, see batcher.ts) and each
// caller resolves only after the broker acknowledged the batch carrying its record.
// Idempotency: the producer is idempotent against its own retries; an application retry
// of the same id (same subject) within the dedup window is answered from a bounded
// in-memory record of acknowledged ids, and consumers drop ids they just processed.
import { Kafka, logLevel, type Admin, type IHeaders, type Producer } from 'kafkajs';
import { deadLetterSubject, RegionsyncError } from '@regionsync/protocol';
import { backoffDelay, sleep } from './backoff.js';
import { Batcher } from './batcher.js';
import { startKafkaConsumer } from './kafka-consumer.js';
import { orderingKeyPartitioner, recordKey } from './kafka-record-key.js';
import { openKafkaKv } from './kafka-kv.js';
import { closedError, headerSafe } from './nats-bus.js';
import { checkPayloadSize, errorMessage, resolveConsumeOptions, type ResolvedBusOptions } from './options.js';
import { checkBucketName, kafkaTopics } from './topology.js';
import { HEADERS, type Bus, type BusHealth, type BusMessage, type ConsumeOptions, type Consumer, type KeyValue, type PublishAck, type PublishOptions, type Topology } from './types.js';

export interface KafkaBusExtras {
  /**
   * How long a publish waits for companions before its batch is sent; default 0: the first
   * publish goes at once, and those made while a send is in flight go together in the next
   * (one send in flight at a time). A 2 ms linger added its timer's delay, several ms on a
   * loaded machine, to every change: commit-to-visible p50 fell from 40 to 31 ms and p99
   * from 143–259 to 97–118 ms without it (replication bench, latency phase).
   */
  lingerMs?: number;
  maxBatchBytes?: number;
}

interface Outgoing {
  topic: string;
  value: Uint8Array;
  /** `id NUL orderingKey` (see kafka-record-key.ts). */
  key: string;
  headers: IHeaders | undefined;
}

const DEDUP_WINDOW_MS = 10 * 60_000;
const DEDUP_MAX_IDS = 100_000;
const RETENTION_MS = String(7 * 86_400_000);
const PRODUCER_STATE_ERRORS = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH', 'INVALID_PRODUCER_ID_MAPPING']);

/** The broker's error type when `err` (or what it wraps) says the producer's sequence state is unusable. */
export function producerStateError(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const o = e as { type?: unknown; message?: unknown; originalError?: unknown; cause?: unknown; errors?: unknown };
    if (typeof o.type === 'string' && PRODUCER_STATE_ERRORS.has(o.type)) return o.type;
    if (typeof o.message === 'string' && /out of order sequence number/i.test(o.message)) return 'OUT_OF_ORDER_SEQUENCE_NUMBER';
    if (Array.isArray(o.errors)) for (const inner of o.errors) { const t = producerStateError(inner); if (t) return t; }
    e = o.originalError ?? o.cause;
  }
  return undefined;
}

export class KafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  readonly kafka: Kafka;
  private producer: Producer | undefined;
  private admin: Admin | undefined;
  private connected = false;
  private lastError: string | undefined;
  private closed = false;
  private readonly closing = new AbortController();
  private connecting: Promise<void> | undefined;
  private resetting: Promise<void> | undefined;
  private readonly batcher: Batcher<Outgoing>;
  private readonly acked = new Map<string, number>();
  private readonly consumers = new Set<{ stop: AbortController; done: Promise<void> }>();

  constructor(
    readonly opts: ResolvedBusOptions,
    extras: KafkaBusExtras = {},
  ) {
    this.kafka = new Kafka({
      clientId: opts.clientId,
      brokers: opts.servers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3_000,
      requestTimeout: 15_000,
      retry: { initialRetryTime: opts.backoff.initialMs, maxRetryTime: opts.backoff.maxMs, retries: 5 },
    });
    this.batcher = new Batcher<Outgoing>({
      lingerMs: extras.lingerMs ?? 0,
      maxItems: 500,
      maxBytes: extras.maxBatchBytes ?? 1024 * 1024,
      size: (o) => o.value.byteLength + 128,
      send: (items) => this.sendBatch(items),
    });
  }

  connect(): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    this.connecting ??= this.connectLoop();
    return this.connecting;
  }

  private async connectLoop(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw closedError();
      const producer = this.newProducer();
      const admin = this.kafka.admin();
      try {
        await producer.connect();
        await admin.connect();
        this.producer = producer;
        this.admin = admin;
        this.connected = true;
        this.opts.log.info({ brokers: this.opts.servers }, 'bus connected to Kafka');
        return;
      } catch (err) {
        this.lastError = errorMessage(err);
        await producer.disconnect().catch(() => undefined);
        await admin.disconnect().catch(() => undefined);
        this.opts.log.warn({ err: this.lastError, attempt }, 'bus cannot connect to Kafka; retrying');
        await sleep(backoffDelay(this.opts.backoff, attempt), this.closing.signal);
      }
    }
  }

  private newProducer(): Producer {
    return this.kafka.producer({
      idempotent: true,
      // kafkajs keeps idempotent ordering only with one request in flight per broker;
      // throughput comes from batching instead.
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // The record key carries the message id too; partitions follow the ordering key only.
      createPartitioner: orderingKeyPartitioner,
      // Bounded, so a cut link surfaces as a retryable error instead of a hang.
      retry: { initialRetryTime: this.opts.backoff.initialMs, maxRetryTime: this.opts.backoff.maxMs, retries: 5 },
    });
  }

  // Replaces the producer (see afterFailedSend). Also the only way out of a sequence state
  // the broker rejected (OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID,
  // INVALID_PRODUCER_EPOCH), which kafkajs does not recover from by itself. Sends wait for
  // it (within their deadline); it retries until the broker answers or the bus closes.
  private resetProducer(reason: string): Promise<void> {
    this.resetting ??= (async () => {
      const old = this.producer;
      this.opts.log.warn({ reason }, 'bus re-creating the Kafka producer');
      await old?.disconnect().catch(() => undefined);
      for (let attempt = 0; !this.closing.signal.aborted; attempt++) {
        const producer = this.newProducer();
        try {
          await producer.connect();
          this.producer = producer;
          this.opts.log.info({}, 'bus Kafka producer re-created');
          return;
        } catch (err) {
          this.lastError = errorMessage(err);
          await producer.disconnect().catch(() => undefined);
          await sleep(backoffDelay(this.opts.backoff, attempt), this.closing.signal).catch(() => undefined);
        }
      }
    })().finally(() => {
      this.resetting = undefined;
    });
    return this.resetting;
  }

  adminClient(): Admin {
    if (!this.admin) throw new RegionsyncError('RS_BUS_CONNECT', 'bus is not connected to Kafka yet');
    return this.admin;
  }

  async provision(topology: Topology): Promise<void> {
    await this.connect();
    await this.ensureTopics(kafkaTopics(this.opts.prefix, topology.regions));
  }

  async ensureTopics(specs: { topic: string; partitions: number; compact?: boolean }[]): Promise<void> {
    const admin = this.adminClient();
    // A freshly created topic may briefly be unknown to the metadata path (retriable
    // UNKNOWN_TOPIC_OR_PARTITION); retry a bounded number of times.
    for (let attempt = 0; ; attempt++) {
      try {
        const existing = new Set(await admin.listTopics());
        const missing = specs.filter((s) => !existing.has(s.topic));
        if (missing.length > 0) {
          await admin.createTopics({
            waitForLeaders: true,
            topics: missing.map((s) => ({
              topic: s.topic,
              numPartitions: s.partitions,
              replicationFactor: 1,
              configEntries: [
                { name: 'max.message.bytes', value: String(8 * 1024 * 1024) },
                ...(s.compact ? [{ name: 'cleanup.policy', value: 'compact' }] : [{ name: 'retention.ms', value: RETENTION_MS }]),
              ],
            })),
          });
        }
        await admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) });
        return;
      } catch (err) {
        const retriable = (err as { retriable?: boolean }).retriable === true || /already exists/i.test(errorMessage(err));
        if (!retriable || attempt >= 10) {
          throw new RegionsyncError('RS_BUS_PROVISION', `cannot create Kafka topics: ${errorMessage(err)}`, { cause: err });
        }
        await sleep(backoffDelay(this.opts.backoff, attempt), this.closing.signal);
      }
    }
  }

  publish(subject: string, data: Uint8Array, opts: PublishOptions): Promise<PublishAck> {
    return this.publishWith(subject, data, opts);
  }

  publishWith(subject: string, data: Uint8Array, opts: PublishOptions, extra?: Record<string, string>): Promise<PublishAck> {
    if (this.closed) return Promise.reject(closedError());
    try {
      checkPayloadSize(subject, data, this.opts.maxPayloadBytes);
      if (!opts || typeof opts.id !== 'string' || opts.id.length === 0 || opts.id.length > 512) {
        throw new RegionsyncError('RS_BUS_PUBLISH', 'publish: opts.id must be a non-empty string of at most 512 characters', { retryable: false });
      }
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.producer) return Promise.reject(new RegionsyncError('RS_BUS_CONNECT', `publish to ${subject}: bus is not connected to Kafka (call connect first)`));
    let key: string;
    try {
      key = recordKey(opts.id, opts.key);
    } catch (err) {
      return Promise.reject(err);
    }
    const dedupKey = `${subject}\u0000${opts.id}`;
    const seen = this.acked.get(dedupKey);
    if (seen !== undefined && seen > Date.now() - DEDUP_WINDOW_MS) return Promise.resolve({ subject, id: opts.id, duplicate: true });
    // Id and ordering key travel in the record key; headers only for dead-letter details.
    // close() waits for the batcher's sends; this continuation only records the id.
    return this.batcher.add({ topic: subject, value: data, key, headers: extra }).then((): PublishAck => {
      this.remember(dedupKey);
      return { subject, id: opts.id, duplicate: false };
    });
  }

  private remember(key: string): void {
    // Re-inserting moves a repeated id to the young end (Map iteration is insertion order).
    if (this.acked.has(key)) this.acked.delete(key);
    this.acked.set(key, Date.now());
    if (this.acked.size <= DEDUP_MAX_IDS) return;
    // Drop the oldest beyond the bound.
    for (const k of this.acked.keys()) {
      if (this.acked.size <= DEDUP_MAX_IDS) break;
      this.acked.delete(k);
    }
  }

  private async sendBatch(items: Outgoing[]): Promise<void> {
    const byTopic = new Map<string, Outgoing[]>();
    for (const it of items) {
      const list = byTopic.get(it.topic);
      if (list) list.push(it);
      else byTopic.set(it.topic, [it]);
    }
    const topicMessages = [...byTopic].map(([topic, list]) => ({
      topic,
      messages: list.map((o) => ({ key: o.key, value: Buffer.from(o.value.buffer, o.value.byteOffset, o.value.byteLength), headers: o.headers })),
    }));
    const deadline = this.deadline(`publish of ${items.length} messages`);
    let producer: Producer | undefined;
    try {
      // A producer being re-created after a failed send is waited for, within the deadline.
      if (this.resetting) await Promise.race([this.resetting, deadline.expired]);
      producer = this.producer;
      if (!producer) throw new RegionsyncError('RS_BUS_CONNECT', 'bus is not connected to Kafka');
      await Promise.race([producer.sendBatch({ acks: -1, topicMessages }), deadline.expired]);
      this.connected = true;
    } catch (err) {
      this.connected = false;
      this.lastError = errorMessage(err);
      this.afterFailedSend(producer, err);
      if (err instanceof RegionsyncError) throw err;
      throw new RegionsyncError('RS_BUS_PUBLISH', `publish to ${[...byTopic.keys()].join(', ')} failed: ${errorMessage(err)}`, { cause: err });
    } finally {
      deadline.clear();
    }
  }

  /** Rejects with a retryable RS_BUS_PUBLISH_TIMEOUT once publishTimeoutMs has passed, unless cleared first. */
  private deadline(what: string): { expired: Promise<never>; clear(): void } {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RegionsyncError('RS_BUS_PUBLISH_TIMEOUT', `${what}: no acknowledgement from Kafka within ${this.opts.publishTimeoutMs} ms`)), this.opts.publishTimeoutMs);
    });
    expired.catch(() => undefined); // only ever raced; never an unhandled rejection
    return { expired, clear: () => clearTimeout(timer) };
  }

  /**
   * After any failed send the producer is replaced. The broker may have stored records of
   * that send without the reply reaching us (a restart or a cut mid-request), and kafkajs
   * then gives the same sequence numbers to the next records it sends: the broker takes
   * those for repeats of the stored ones and acknowledges them without storing them, a
   * silent loss (seen as one missing transaction after a broker restart). A new producer id
   * starts a fresh sequence; a record that was stored and is sent again is stored twice,
   * and consumers drop the repeat by message id.
   */
  private afterFailedSend(producer: Producer | undefined, err: unknown): void {
    if (this.closed || producer === undefined || producer !== this.producer) return;
    void this.resetProducer(producerStateError(err) ?? `a send failed: ${errorMessage(err)}`);
  }

  deadLetter(msg: BusMessage, reason: string): Promise<void> {
    const dlq = deadLetterSubject(this.opts.prefix, msg.subject);
    const extra = { [HEADERS.dlqReason]: headerSafe(reason), [HEADERS.dlqSubject]: msg.subject, [HEADERS.dlqSeq]: msg.seq };
    return this.publishWith(dlq, msg.data, { id: `${msg.subject}@${msg.seq}`, key: msg.key }, extra).then(() => undefined);
  }

  consume(opts: ConsumeOptions): Consumer {
    if (this.closed) throw closedError();
    const resolved = resolveConsumeOptions(opts);
    const stop = new AbortController();
    const signal = AbortSignal.any([resolved.signal, stop.signal]);
    const consumer = startKafkaConsumer(this, { ...resolved, signal });
    const entry = { stop, done: consumer.done };
    this.consumers.add(entry);
    void consumer.done.then(() => this.consumers.delete(entry));
    return consumer;
  }

  async kv(bucket: string): Promise<KeyValue> {
    checkBucketName(bucket);
    await this.connect();
    return openKafkaKv(this, bucket, this.closing.signal);
  }

  /** Publish one record and wait for it (KV writes; no dedup, tombstones allowed). */
  async sendOne(topic: string, key: string, value: Uint8Array | null): Promise<void> {
    if (this.closed) throw closedError();
    if (this.resetting) {
      const deadline = this.deadline(`write to ${topic}`);
      await Promise.race([this.resetting, deadline.expired]).finally(deadline.clear);
    }
    const producer = this.producer;
    if (!producer) throw new RegionsyncError('RS_BUS_CONNECT', 'bus is not connected to Kafka');
    try {
      await producer.send({ topic, acks: -1, messages: [{ key, value: value ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : null }] });
    } catch (err) {
      this.afterFailedSend(producer, err);
      throw new RegionsyncError('RS_BUS_PUBLISH', `write to ${topic} failed: ${errorMessage(err)}`, { cause: err });
    }
  }

  markHealthy(ok: boolean, err?: unknown): void {
    this.connected = ok;
    if (err !== undefined) this.lastError = errorMessage(err);
  }

  health(): BusHealth {
    return { connected: this.connected && !this.closed, ...(this.lastError ? { lastError: this.lastError } : {}) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closing.abort();
    for (const c of this.consumers) c.stop.abort();
    await Promise.all([...this.consumers].map((c) => c.done));
    // Flush queued publishes before refusing new ones, so their callers get an answer.
    await this.batcher.flush();
    this.closed = true;
    this.connected = false;
    await this.producer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
  }
}
