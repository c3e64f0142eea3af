// NATS JetStream adapter. Durability: a publish resolves on the stream's PubAck (file
// storage); idempotency: `Nats-Msg-Id` scoped by subject inside the stream's duplicate
// window; consumption: one durable pull consumer per durable name (see nats-consumer.ts).
import { connect, headers as natsHeaders, nanos, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { deadLetterSubject, errorCode, RegionsyncError } from '@regionsync/protocol';
import { backoffDelay, sleep, waitUntil } from './backoff.js';
import { startNatsConsumer } from './nats-consumer.js';
import { JetStreamPublisher } from './nats-publisher.js';
import { checkPayloadSize, errorMessage, resolveConsumeOptions, type ResolvedBusOptions } from './options.js';
import { checkBucketName, natsKvBucket, natsStreams } from './topology.js';
import { HEADERS, type Bus, type BusHealth, type BusMessage, type ConsumeOptions, type Consumer, type KeyValue, type PublishAck, type PublishOptions, type Topology } from './types.js';

const DAY_MS = 86_400_000;
export const NATS_STREAM_DEFAULTS = {
  maxAgeMs: 7 * DAY_MS,
  duplicateWindowMs: 10 * 60_000,
  // JetStream reserves max_bytes up front against the server's store (8 GB locally), so
  // keep per-stream limits moderate; pass CreateBusExtras.nats.streamMaxBytes to change.
  changesMaxBytes: 256 * 1024 ** 2,
  otherMaxBytes: 64 * 1024 ** 2,
};

export interface NatsBusExtras {
  /** Per-stream byte limits (JetStream reserves them); tests use small ones. */
  streamMaxBytes?: { changes: number; other: number };
}

const RECONNECT_MAX_MS = 1_000;

export class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private publisher: JetStreamPublisher | undefined;
  private jsm: JetStreamManager | undefined;
  private connected = false;
  private lastError: string | undefined;
  private closed = false;
  private readonly closing = new AbortController();
  private connecting: Promise<void> | undefined;
  private reconnectAttempt = 0;
  private readonly reconnectListeners = new Set<() => void>();
  private readonly inflight = new Set<Promise<unknown>>();
  // Publishes of one event-loop turn, sent together (see publishWith).
  private sendQueue: QueuedPublish[] = [];
  private sendScheduled = false;
  private readonly consumers = new Set<{ stop: AbortController; done: Promise<void> }>();

  constructor(
    readonly opts: ResolvedBusOptions,
    private readonly extras: NatsBusExtras = {},
  ) {}

  connect(): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    this.connecting ??= this.connectLoop();
    return this.connecting;
  }

  private async connectLoop(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw closedError();
      try {
        const nc = await connect({
          servers: this.opts.servers,
          name: this.opts.clientId,
          maxReconnectAttempts: -1,
          // Exponential backoff between reconnect attempts, reset once connected, capped at
          // RECONNECT_MAX_MS: an attempt costs one refused connection, while every second
          // spent waiting after a link came back is a second more of lag to catch up.
          reconnectDelayHandler: () => backoffDelay({ ...this.opts.backoff, maxMs: Math.min(this.opts.backoff.maxMs, RECONNECT_MAX_MS) }, this.reconnectAttempt++),
          pingInterval: 5_000,
          maxPingOut: 2,
          timeout: 5_000,
          // Every request (each JetStream publish) otherwise builds two Error objects with
          // stack traces up front: 40% of the publish CPU in the bus bench. Our errors
          // carry subject and cause instead.
          noAsyncTraces: true,
        });
        const version = nc.info?.version ?? '';
        if (!natsServerSupported(version)) {
          await nc.close().catch(() => undefined);
          throw new RegionsyncError('RS_CONFIG_PREREQUISITE', `nats-server ${version || '(unknown version)'} is too old: regionsync needs ${MIN_NATS_SERVER} or newer (JetStream priority groups keep one consumer process per durable). Upgrade the NATS servers.`, { retryable: false });
        }
        this.nc = nc;
        this.js = jetstream(nc, { timeout: this.opts.publishTimeoutMs });
        this.publisher = new JetStreamPublisher(nc, this.opts.publishTimeoutMs);
        this.jsm = await jetstreamManager(nc, { timeout: this.opts.publishTimeoutMs });
        this.connected = true;
        this.watchStatus(nc);
        this.opts.log.info({ servers: this.opts.servers }, 'bus connected to NATS');
        return;
      } catch (err) {
        this.lastError = errorMessage(err);
        // Only a server too old to use is final; anything else (refused, timeout) is retried.
        if (errorCode(err) === 'RS_CONFIG_PREREQUISITE') throw err;
        this.opts.log.warn({ err: this.lastError, attempt }, 'bus cannot connect to NATS; retrying');
        await sleep(backoffDelay(this.opts.backoff, attempt), this.closing.signal);
      }
    }
  }

  private watchStatus(nc: NatsConnection): void {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.connected = false;
          this.opts.log.warn({ server: s.server }, 'bus disconnected from NATS; reconnecting');
        } else if (s.type === 'reconnect') {
          this.connected = true;
          this.reconnectAttempt = 0;
          this.opts.log.info({ server: s.server }, 'bus reconnected to NATS');
          for (const cb of this.reconnectListeners) cb();
        } else if (s.type === 'error') {
          this.lastError = errorMessage(s.error);
        }
      }
    })();
    void nc.closed().then((err) => {
      this.connected = false;
      if (err) this.lastError = errorMessage(err);
    });
  }

  /** Consumers re-create their pull subscription after a reconnect (see nats-consumer.ts). */
  onReconnect(cb: () => void): () => void {
    this.reconnectListeners.add(cb);
    return () => this.reconnectListeners.delete(cb);
  }

  /** Wait (polling, bounded by the signal) until connected; false if aborted or closed. */
  async ready(signal: AbortSignal): Promise<boolean> {
    await this.connect();
    return waitUntil(() => this.connected || this.closed, Number.MAX_SAFE_INTEGER, 100, signal).then((ok) => ok && !this.closed);
  }

  manager(): JetStreamManager {
    if (!this.jsm || !this.js) throw new RegionsyncError('RS_BUS_CONNECT', 'bus is not connected to NATS yet');
    return this.jsm;
  }

  client(): JetStreamClient {
    if (!this.js) throw new RegionsyncError('RS_BUS_CONNECT', 'bus is not connected to NATS yet');
    return this.js;
  }

  async flush(): Promise<void> {
    if (this.nc && !this.nc.isClosed()) await this.nc.flush().catch(() => undefined);
  }

  async provision(topology: Topology): Promise<void> {
    await this.connect();
    const jsm = this.manager();
    const limits = this.extras.streamMaxBytes ?? { changes: NATS_STREAM_DEFAULTS.changesMaxBytes, other: NATS_STREAM_DEFAULTS.otherMaxBytes };
    for (const spec of natsStreams(this.opts.prefix, topology.regions)) {
      const changes = spec.family === 'changes';
      const config: Partial<StreamConfig> & { name: string } = {
        name: spec.name,
        subjects: spec.subjects,
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        max_age: nanos(NATS_STREAM_DEFAULTS.maxAgeMs),
        max_bytes: changes ? limits.changes : limits.other,
        // A full changes stream refuses publishes (retryable, so the WAL slot keeps the
        // data) instead of silently dropping the oldest undelivered changes.
        discard: changes || spec.family === 'dlq' || spec.family === 'audit' ? DiscardPolicy.New : DiscardPolicy.Old,
        duplicate_window: nanos(NATS_STREAM_DEFAULTS.duplicateWindowMs),
        max_msg_size: this.opts.maxPayloadBytes + 64 * 1024,
        num_replicas: 1,
      };
      try {
        const existing = await jsm.streams.info(spec.name).catch(() => undefined);
        if (existing) await jsm.streams.update(spec.name, config);
        else await jsm.streams.add(config);
      } catch (err) {
        throw new RegionsyncError('RS_BUS_PROVISION', `cannot create or update JetStream stream ${spec.name}: ${errorMessage(err)}`, { cause: err });
      }
    }
  }

  publish(subject: string, data: Uint8Array, opts: PublishOptions): Promise<PublishAck> {
    return this.publishWith(subject, data, opts);
  }

  /** Publish with optional extra headers; no await before the send, so callers can pipeline. */
  publishWith(subject: string, data: Uint8Array, opts: PublishOptions, extra?: Record<string, string>): Promise<PublishAck> {
    if (this.closed) return Promise.reject(closedError());
    try {
      checkPayloadSize(subject, data, this.opts.maxPayloadBytes);
      checkId(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    const publisher = this.publisher;
    if (!publisher) return Promise.reject(new RegionsyncError('RS_BUS_CONNECT', `publish to ${subject}: bus is not connected to NATS (call connect first)`));
    // Fail fast while disconnected rather than letting the client buffer the publish:
    // a buffered publish could be stored after reconnect ahead of an earlier one that
    // was lost in transit and is retried later, which would break per-key order.
    if (!this.connected) return Promise.reject(disconnectedError(subject));
    const h: MsgHdrs = natsHeaders();
    h.set(HEADERS.id, opts.id);
    if (opts.key !== undefined) h.set(HEADERS.key, opts.key);
    for (const [k, v] of Object.entries(extra ?? {})) h.set(k, v);
    // The client writes its buffer to the socket one microtask after a publish, and capture
    // publishes across microtask hops (one per WAL message): every publish became its own
    // socket write, waking proxy and server each time (a quarter to a third of the capture
    // agent's samples were in writeBuffer at 1,000 commits/s). Publishes are queued and sent
    // together at the end of the event-loop turn instead: one write, order unchanged.
    const p = new Promise<PublishAck>((resolve, reject) => {
      this.sendQueue.push({ publisher, subject, data, id: opts.id, headers: h, resolve, reject });
    });
    if (!this.sendScheduled) {
      this.sendScheduled = true;
      setImmediate(() => this.sendQueued());
    }
    this.inflight.add(p);
    void p.then(
      () => this.inflight.delete(p),
      () => this.inflight.delete(p),
    );
    return p;
  }

  private sendQueued(): void {
    this.sendScheduled = false;
    const queue = this.sendQueue;
    this.sendQueue = [];
    for (const q of queue) {
      // Same rule as at the call: never let the client buffer a publish while disconnected.
      // (A publish made before close() is still sent: close awaits it before draining.)
      if (!this.connected) {
        q.reject(disconnectedError(q.subject));
        continue;
      }
      q.publisher.publish(q.subject, q.data, q.headers, `${q.subject}:${q.id}`).then(
        (pa) => q.resolve({ subject: q.subject, id: q.id, duplicate: pa.duplicate, seq: String(pa.seq) }),
        (err: unknown) => q.reject(publishError(q.subject, err)),
      );
    }
  }

  deadLetter(msg: BusMessage, reason: string): Promise<void> {
    const dlq = deadLetterSubject(this.opts.prefix, msg.subject);
    const extra: Record<string, string> = { [HEADERS.dlqReason]: headerSafe(reason), [HEADERS.dlqSubject]: msg.subject, [HEADERS.dlqSeq]: msg.seq };
    // The id names the original position so a dead-letter retried after a crash is deduplicated.
    return this.publishWith(dlq, msg.data, { id: `${msg.subject}@${msg.seq}`, key: msg.key }, extra).then(() => undefined);
  }

  consume(opts: ConsumeOptions): Consumer {
    if (this.closed) throw closedError();
    const resolved = resolveConsumeOptions(opts);
    // The bus's own controller lets close() stop consumers the caller forgot.
    const stop = new AbortController();
    const signal = AbortSignal.any([resolved.signal, stop.signal]);
    const consumer = startNatsConsumer(this, { ...resolved, signal });
    const entry = { stop, done: consumer.done };
    this.consumers.add(entry);
    void consumer.done.then(() => this.consumers.delete(entry));
    return consumer;
  }

  async kv(bucket: string): Promise<KeyValue> {
    checkBucketName(bucket);
    await this.connect();
    const name = natsKvBucket(this.opts.prefix, bucket);
    let kv;
    try {
      kv = await new Kvm(this.client()).create(name, { history: 1, storage: StorageType.File });
    } catch (err) {
      throw new RegionsyncError('RS_BUS_PROVISION', `cannot create NATS KV bucket ${name}: ${errorMessage(err)}`, { cause: err });
    }
    const wrap = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        throw new RegionsyncError('RS_BUS_PUBLISH', `kv ${bucket} ${what}: ${errorMessage(err)}`, { cause: err });
      }
    };
    return {
      get: (key) => wrap('get', async () => {
        const e = await kv.get(key);
        return e && e.operation === 'PUT' ? e.value : undefined;
      }),
      put: (key, value) => wrap('put', async () => void (await kv.put(key, value))),
      delete: (key) => wrap('delete', () => kv.delete(key)),
      keys: () => wrap('keys', async () => {
        const out: string[] = [];
        for await (const k of await kv.keys()) out.push(k);
        return out.sort();
      }),
    };
  }

  health(): BusHealth {
    return { connected: this.connected && !this.closed, ...(this.lastError ? { lastError: this.lastError } : {}) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    for (const c of this.consumers) c.stop.abort();
    await Promise.all([...this.consumers].map((c) => c.done));
    await Promise.allSettled([...this.inflight]);
    const nc = this.nc;
    this.connected = false;
    this.publisher?.close(closedError());
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }
}

function checkId(opts: PublishOptions): void {
  if (!opts || typeof opts.id !== 'string' || opts.id.length === 0 || opts.id.length > 512 || /[\r\n]/.test(opts.id)) {
    throw new RegionsyncError('RS_BUS_PUBLISH', 'publish: opts.id must be a non-empty single-line string of at most 512 characters', { retryable: false });
  }
}

export function closedError(): RegionsyncError {
  return new RegionsyncError('RS_BUS_CLOSED', 'bus is closed');
}

interface QueuedPublish {
  publisher: JetStreamPublisher;
  subject: string;
  data: Uint8Array;
  id: string;
  headers: MsgHdrs;
  resolve: (ack: PublishAck) => void;
  reject: (err: unknown) => void;
}

function disconnectedError(subject: string): RegionsyncError {
  return new RegionsyncError('RS_BUS_CONNECT', `publish to ${subject}: bus is disconnected from NATS, retry later`);
}

function publishError(subject: string, err: unknown): RegionsyncError {
  const msg = errorMessage(err);
  const name = err instanceof Error ? err.name : '';
  if (name === 'TimeoutError' || /timeout/i.test(msg)) {
    return new RegionsyncError('RS_BUS_PUBLISH_TIMEOUT', `publish to ${subject}: no acknowledgement from JetStream in time (${msg})`, { cause: err });
  }
  return new RegionsyncError('RS_BUS_PUBLISH', `publish to ${subject} failed: ${msg}`, { cause: err });
}

/** Header values are single-line; keep reasons short. */
export function headerSafe(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 512);
}

export const MIN_NATS_SERVER = '2.11.0';

/** Whether a nats-server version (as in its INFO, e.g. `2.15.2` or `2.12.0-beta.1`) is at least MIN_NATS_SERVER. */
export function natsServerSupported(version: string): boolean {
  const parse = (v: string) => v.split(/[.-]/).slice(0, 3).map((x) => Number.parseInt(x, 10));
  const have = parse(version);
  const need = parse(MIN_NATS_SERVER);
  if (have.length < 3 || have.some((x) => !Number.isFinite(x))) return false;
  for (let i = 0; i < 3; i++) if (have[i] !== need[i]) return have[i]! > need[i]!;
  return true;
}
