// Bus benchmark: publish->consume throughput and latency for 1 KiB messages through
// @regionsync/bus, and through the raw client library with the same durability as the
// baseline (JetStream: pipelined publish awaiting PubAcks + durable pull consumer with
// explicit acks; Kafka: idempotent acks=-1 producer + consumer group committing offsets).
import { randomBytes } from 'node:crypto';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Kafka, logLevel } from 'kafkajs';
import { createBus, type Bus, type BusKind } from '@regionsync/bus';
import { changesSubject } from '@regionsync/protocol';
import { ensureStack, type StackEnv } from '@regionsync/stack';
import { nowMs, percentile, round, sentAt, stampedPayload } from './bus-stats.js';

const SIZE = 1024;
const WINDOW = 1_000; // publishes in flight at once, for both the bus and the raw client

interface RunResult {
  msgsPerS: number;
  p50: number;
  p99: number;
}

/** Per-field median of several rounds. */
function medianRun(runs: RunResult[]): RunResult {
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  return { msgsPerS: Math.round(med(runs.map((r) => r.msgsPerS))), p50: round(med(runs.map((r) => r.p50))), p99: round(med(runs.map((r) => r.p99))) };
}

function parseArgs(args: string[]): { count: number; kinds: BusKind[]; rounds: number } {
  let count = 20_000;
  let rounds = 3;
  let kinds: BusKind[] = ['nats', 'kafka'];
  for (const a of args) {
    const m = /^--(count|only|rounds)=(.+)$/.exec(a);
    if (m?.[1] === 'count') count = Number(m[2]);
    else if (m?.[1] === 'rounds') rounds = Number(m[2]);
    else if (m?.[1] === 'only') kinds = m[2]!.split(',') as BusKind[];
    else throw new Error(`bench bus: unknown argument ${a} (use --count=N, --rounds=N, --only=nats,kafka)`);
  }
  if (!Number.isSafeInteger(count) || count < 100) throw new Error('bench bus: --count must be an integer >= 100');
  if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > 20) throw new Error('bench bus: --rounds must be an integer from 1 to 20');
  return { count, kinds, rounds };
}

/** Calls `send(i)` for i in [0, count) with at most `window` unsettled at once. */
async function pipelined(count: number, window: number, send: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < count && failed === undefined) {
      const i = next++;
      await send(i).catch((err: unknown) => (failed = err));
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, worker));
  if (failed !== undefined) throw failed;
}

/** Measures from the first publish to the last consumed message. */
async function measure(count: number, setup: (onMessage: (data: Uint8Array) => void) => Promise<{ publish: (i: number) => Promise<unknown>; stop: () => Promise<void> }>): Promise<RunResult> {
  const latencies: number[] = [];
  let received = 0;
  let allIn: () => void = () => undefined;
  const done = new Promise<void>((r) => (allIn = r));
  const { publish, stop } = await setup((data) => {
    latencies.push(nowMs() - sentAt(data));
    if (++received === count) allIn();
  });
  const t0 = nowMs();
  await pipelined(count, WINDOW, publish);
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([done, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`only ${received}/${count} messages consumed within 120 s`)), 120_000)))]);
  clearTimeout(timer);
  const elapsed = (nowMs() - t0) / 1000;
  await stop();
  return { msgsPerS: Math.round(count / elapsed), p50: round(percentile(latencies, 50)), p99: round(percentile(latencies, 99)) };
}

async function viaBus(env: StackEnv, kind: BusKind, count: number): Promise<RunResult> {
  const prefix = `bench${randomBytes(3).toString('hex')}`;
  const servers = kind === 'nats' ? env.nats.servers : env.kafka.brokers;
  const pub: Bus = createBus({ kind, servers, prefix, clientId: 'bench-pub' }, { nats: { streamMaxBytes: { changes: 64 * 1024 * 1024, other: 1024 * 1024 } } });
  const sub: Bus = createBus({ kind, servers, prefix, clientId: 'bench-sub' });
  await pub.connect();
  await sub.connect();
  await pub.provision({ regions: ['bench'] });
  const subject = changesSubject(prefix, 'bench');
  try {
    return await measure(count, async (onMessage) => {
      const stop = new AbortController();
      const consumer = sub.consume({ subject, durable: 'bench', signal: stop.signal, handler: async (m) => onMessage(m.data) });
      return {
        publish: (i) => pub.publish(subject, stampedPayload(SIZE), { id: `bench:${i}`, key: 'src' }),
        stop: async () => {
          stop.abort();
          await consumer.done;
        },
      };
    });
  } finally {
    await pub.close();
    await sub.close();
    await dropBench(env, kind, prefix);
  }
}

async function rawNats(env: StackEnv, count: number): Promise<RunResult> {
  const nc = await connect({ servers: env.nats.servers });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const name = `bench-raw-${randomBytes(3).toString('hex')}`;
  const subject = `${name}.changes`;
  await jsm.streams.add({ name, subjects: [subject], storage: StorageType.File, retention: RetentionPolicy.Limits, max_bytes: 64 * 1024 * 1024 });
  await jsm.consumers.add(name, { durable_name: 'bench', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, max_ack_pending: 256 });
  try {
    return await measure(count, async (onMessage) => {
      const iter = await (await js.consumers.get(name, 'bench')).consume({ max_messages: 256 });
      const loop = (async () => {
        for await (const m of iter) {
          onMessage(m.data);
          m.ack();
        }
      })();
      return {
        publish: (i) => js.publish(subject, stampedPayload(SIZE), { msgID: `bench:${i}` }),
        stop: async () => {
          iter.stop();
          await loop;
        },
      };
    });
  } finally {
    await jsm.streams.delete(name);
    await nc.close();
  }
}

async function rawKafka(env: StackEnv, count: number): Promise<RunResult> {
  const kafka = new Kafka({ clientId: 'bench-raw', brokers: env.kafka.brokers, logLevel: logLevel.NOTHING });
  const topic = `bench-raw-${randomBytes(3).toString('hex')}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    return await measure(count, async (onMessage) => {
      const consumer = kafka.consumer({ groupId: `${topic}-g`, maxWaitTimeInMs: 100 });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({ eachMessage: async ({ message }) => onMessage(message.value!) });
      // The plain way to get throughput from kafkajs: the caller groups its messages, one
      // awaited sendBatch per chunk (a send per message would serialise on the producer).
      const chunk = 500;
      let queued: { i: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
      const flush = async () => {
        const batch = queued;
        queued = [];
        try {
          await producer.send({ topic, acks: -1, messages: batch.map(() => ({ key: 'src', value: Buffer.from(stampedPayload(SIZE)) })) });
          batch.forEach((b) => b.resolve());
        } catch (err) {
          batch.forEach((b) => b.reject(err));
        }
      };
      let chain = Promise.resolve();
      return {
        publish: (i) =>
          new Promise<void>((resolve, reject) => {
            queued.push({ i, resolve, reject });
            if (queued.length >= chunk || i === count - 1) chain = chain.then(flush);
          }),
        stop: () => consumer.disconnect(),
      };
    });
  } finally {
    await producer.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

async function dropBench(env: StackEnv, kind: BusKind, prefix: string): Promise<void> {
  if (kind === 'nats') {
    const nc = await connect({ servers: env.nats.servers });
    const jsm = await jetstreamManager(nc);
    for await (const s of jsm.streams.list()) if (s.config.name.startsWith(`${prefix}-`)) await jsm.streams.delete(s.config.name);
    await nc.close();
    return;
  }
  const admin = new Kafka({ clientId: 'bench-cleanup', brokers: env.kafka.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
}

/** Entry point for the bench registry (cli.ts): prints progress, then the JSON line last. */
export async function main(args: string[]): Promise<void> {
  console.log(JSON.stringify(await runBusBench(args)));
}

export async function runBusBench(args: string[]): Promise<Record<string, unknown>> {
  const { count, kinds, rounds } = parseArgs(args);
  const env = await ensureStack();
  const out: Record<string, unknown> = { bench: 'bus' };
  for (const kind of kinds) {
    // Rounds alternate raw and bus so both see the same machine (2 cores shared with the
    // broker); the medians are compared, since one short round is noisy either way.
    const raws: RunResult[] = [];
    const buses: RunResult[] = [];
    for (let round = 1; round <= rounds; round++) {
      const raw = kind === 'nats' ? await rawNats(env, count) : await rawKafka(env, count);
      console.log(`[bench bus] ${kind} round ${round}/${rounds}: raw client ${raw.msgsPerS} msg/s, p50 ${raw.p50} ms, p99 ${raw.p99} ms (${count} x ${SIZE} B)`);
      const bus = await viaBus(env, kind, count);
      console.log(`[bench bus] ${kind} round ${round}/${rounds}: @regionsync/bus ${bus.msgsPerS} msg/s, p50 ${bus.p50} ms, p99 ${bus.p99} ms`);
      raws.push(raw);
      buses.push(bus);
    }
    const raw = medianRun(raws);
    const bus = medianRun(buses);
    out[kind] = { msgs_per_s: bus.msgsPerS, p50_ms: bus.p50, p99_ms: bus.p99, raw_msgs_per_s: raw.msgsPerS, raw_p50_ms: raw.p50, raw_p99_ms: raw.p99, ratio: round(bus.msgsPerS / raw.msgsPerS), rounds };
  }
  return out;
}
