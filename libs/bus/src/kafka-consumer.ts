// Kafka consumer group per durable name. Partitions are handled one at a time and the
// messages of a partition strictly in order; an offset is resolved (and so committed)
// only after its handler succeeded or it was dead-lettered. Offsets at or below the last
// one processed (redelivery after a rebalance or restart of the group member) and ids
// just processed on the same partition are skipped.
import type { EachBatchPayload, IHeaders } from 'kafkajs';
import { backoffDelay, sleep } from './backoff.js';
import { deliver, deliverBatch } from './delivery.js';
import { splitRecordKey } from './kafka-record-key.js';
import type { KafkaBus } from './kafka-bus.js';
import { errorMessage, type ResolvedConsumeOptions } from './options.js';
import { HEADERS, type BusMessage, type Consumer, type ConsumerStats } from './types.js';

const RECENT_IDS_PER_PARTITION = 10_000;
/**
 * kafkajs can stop fetching after its connection was cut without ever emitting CRASH
 * (seen after a Toxiproxy cut and a broker restart: minutes with no fetch). Fetch events,
 * handler progress and in-place retries count as activity; this long without any
 * re-creates the consumer (offsets are committed, so it resumes where it was).
 */
export const KAFKA_STALL_MS = 30_000;
const EMPTY = new Uint8Array(0);

export function headerValue(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? undefined : first.toString();
}

/** Bounded insertion-ordered set: the most recent ids processed on one partition. */
export class RecentIds {
  private readonly ids = new Set<string>();
  constructor(private readonly max: number) {}
  has(id: string): boolean {
    return this.ids.has(id);
  }
  add(id: string): void {
    this.ids.add(id);
    if (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value as string);
  }
}

/**
 * Fetch bound derived from maxInFlight (~1 KiB per message), so prefetch memory is
 * bounded; at least kafkajs's own 1 MiB per partition, since a fetch is a round trip
 * (256 KiB fetches cost about a tenth of the throughput in the bus bench).
 */
export function fetchBytes(maxInFlight: number): number {
  return Math.min(16 * 1024 * 1024, Math.max(1024 * 1024, maxInFlight * 1024));
}

/**
 * Message id and ordering key of a record: from the record key (`id NUL key`), or, for
 * records written before the id moved into the key, from the id header and a plain key.
 */
export function idAndKey(rawKey: Buffer | null, headers: IHeaders | undefined): { id: string | undefined; key: string | undefined } {
  const legacyId = headerValue(headers, HEADERS.id);
  if (legacyId !== undefined) return { id: legacyId, key: rawKey?.toString() ?? headerValue(headers, HEADERS.key) };
  if (rawKey === null) return { id: undefined, key: undefined };
  return splitRecordKey(rawKey.toString());
}

export function startKafkaConsumer(bus: KafkaBus, opts: ResolvedConsumeOptions): Consumer {
  const stats: ConsumerStats = { delivered: 0, acked: 0, deadLettered: 0, inFlight: 0, standby: false };
  const { log, backoff } = bus.opts;
  const signal = opts.signal;
  const lastOffset = new Map<number, bigint>();
  let lastActivity = Date.now();
  const alive = () => {
    lastActivity = Date.now();
  };
  const recent = new Map<number, RecentIds>();
  const ctx = { opts, backoff, log, stats, deadLetter: (dm: BusMessage, reason: string) => bus.deadLetter(dm, reason) };

  const eachBatch = async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, uncommittedOffsets, isRunning, isStale }: EachBatchPayload) => {
    const partition = batch.partition;
    const seen = recent.get(partition) ?? new RecentIds(RECENT_IDS_PER_PARTITION);
    recent.set(partition, seen);
    stats.inFlight = batch.messages.length;
    // One keep-alive per batch, not a timer per message: a slow handler still heartbeats.
    const keepAlive = setInterval(() => {
      alive();
      void heartbeat().catch(() => undefined);
    }, 3_000);
    let handled = 0;
    try {
      const messages = batch.messages;
      const limit = opts.batchHandler ? opts.maxBatch : 1;
      for (let i = 0; i < messages.length; ) {
        if (!isRunning() || isStale() || signal.aborted) break;
        // The next run of fetched messages (up to maxBatch) that were not processed before.
        const run: { m: (typeof messages)[number]; msg: BusMessage; offset: bigint }[] = [];
        // Ids within the run (only a batch can hold a repeat of its own id).
        const runIds = limit > 1 ? new Set<string>() : undefined;
        let runBytes = 0;
        for (; i < messages.length && run.length < limit && runBytes < opts.maxBatchBytes; i++) {
          const m = messages[i]!;
          const offset = BigInt(m.offset);
          const { id, key } = idAndKey(m.key, m.headers);
          if (offset <= (lastOffset.get(partition) ?? -1n) || (id !== undefined && (seen.has(id) || runIds?.has(id) === true))) {
            if (run.length > 0) break; // resolved after the run before it
            resolveOffset(m.offset);
            stats.inFlight -= 1;
            continue;
          }
          if (id !== undefined) runIds?.add(id);
          runBytes += m.value?.length ?? 0;
          run.push({
            m,
            offset,
            msg: { subject: batch.topic, data: m.value ?? EMPTY, id, key, deliveryCount: 1, seq: `${partition}:${m.offset}` },
          });
        }
        if (run.length === 0) continue;
        const done = run.length === 1 ? ((await deliver(run[0]!.msg, ctx)) === 'done' ? 1 : 0) : await deliverBatch(run.map((r) => r.msg), ctx);
        alive();
        for (let k = 0; k < done; k++) {
          const r = run[k]!;
          resolveOffset(r.m.offset);
          stats.acked += 1;
          stats.inFlight -= 1;
          lastOffset.set(partition, r.offset);
          if (r.msg.id !== undefined) seen.add(r.msg.id);
        }
        if (done < run.length) break;
        // Both only check a clock unless something is due; every 64 messages is often enough.
        if (Math.floor((handled + done) / 64) > Math.floor(handled / 64)) {
          await commitOffsetsIfNecessary();
          await heartbeat();
        }
        handled += done;
      }
      // Stopping: commit what was handled now, not at the next interval that never comes,
      // so the next member of the group resumes right after it (drain and acknowledge).
      if (!isStale() && (signal.aborted || !isRunning())) await commitOffsetsIfNecessary(uncommittedOffsets()).catch(() => undefined);
    } finally {
      clearInterval(keepAlive);
      stats.inFlight = 0;
    }
  };

  const run = async () => {
    for (let failures = 0; !signal.aborted; ) {
      const consumer = bus.kafka.consumer({
        // Scoped to the topic: the same durable name on another prefix (another cluster on
        // a shared broker) must never join this group and take its partitions.
        groupId: `${opts.subject}/${opts.durable}`,
        allowAutoTopicCreation: false,
        maxBytesPerPartition: fetchBytes(opts.maxInFlight),
        maxBytes: fetchBytes(opts.maxInFlight),
        maxWaitTimeInMs: 100,
        sessionTimeout: 10_000,
        heartbeatInterval: 3_000,
        retry: { initialRetryTime: backoff.initialMs, maxRetryTime: backoff.maxMs, retries: 8 },
      });
      // kafkajs restarts itself after retriable crashes; a final crash ends this round.
      let crashed: (why: string) => void = () => undefined;
      const stopped = new Promise<string>((resolve) => {
        crashed = resolve;
        signal.addEventListener('abort', () => resolve('aborted'), { once: true });
      });
      consumer.on(consumer.events.CRASH, (e) => {
        bus.markHealthy(false, e.payload.error);
        if (!e.payload.restart) crashed(errorMessage(e.payload.error));
      });
      // Another member of the group (a rolling update's old agent) may hold every partition.
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        stats.standby = (e.payload.memberAssignment[opts.subject]?.length ?? 0) === 0;
      });
      consumer.on(consumer.events.FETCH_START, alive);
      consumer.on(consumer.events.FETCH, alive);
      alive();
      const watchdog = setInterval(() => {
        if (Date.now() - lastActivity > KAFKA_STALL_MS) crashed(`stalled: no fetch or progress for ${Math.round((Date.now() - lastActivity) / 1000)} s`);
      }, 5_000);
      let started = false;
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [opts.subject], fromBeginning: true });
        await consumer.run({
          autoCommit: true,
          autoCommitInterval: 1_000,
          // Offsets are a restart position, not the dedup guard (handlers are idempotent and
          // redelivered offsets/ids are skipped): an awaited commit round trip every few
          // hundred messages cost a third of the consume rate; once a second is enough.
          autoCommitThreshold: null,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: 1,
          eachBatch,
        });
        started = true;
        const why = await stopped;
        if (why !== 'aborted') log.warn({ subject: opts.subject, durable: opts.durable, err: why }, 'bus Kafka consumer crashed; re-creating it');
      } catch (err) {
        if (!signal.aborted) log.warn({ subject: opts.subject, durable: opts.durable, err: errorMessage(err) }, 'bus Kafka consumer failed to start; retrying');
      } finally {
        clearInterval(watchdog);
        await consumer.disconnect().catch(() => undefined);
      }
      if (!signal.aborted) await sleep(backoffDelay(backoff, started ? 0 : failures++), signal);
    }
  };

  const done = run().catch((err: unknown) => {
    log.warn({ subject: opts.subject, durable: opts.durable, err: errorMessage(err) }, 'bus consumer stopped on an unexpected error');
  });
  return { done, stats: () => ({ ...stats }) };
}
