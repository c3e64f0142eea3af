// The bus contract, proved on the real brokers of the local stack for both adapters.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changesSubject, createCodec, deadLetterSubject, errorCode, exampleEnvelopes, isRetryable } from '@regionsync/protocol';
import { cutLink, dropReplies, ensureStack, restoreLink, restoreReplies, type StackEnv } from '@regionsync/stack';
import { waitUntil } from './backoff.js';
import { startBroker, stopBroker } from './testing/broker-control.js';
import { attachedConsumers, dropPrefix, payload, randomPrefix, readN, servers, testBus } from './testing/fixtures.js';
import { publishRange } from './testing/publisher.js';
import type { Bus, BusKind, BusMessage } from './types.js';

const DEST = 'eu-west-1';
const SRC = 'us-east-1';
const pkgDir = fileURLToPath(new URL('..', import.meta.url));

let env: StackEnv;
beforeAll(async () => {
  env = await ensureStack();
});

/** In-process consumer that records what it saw and checks per-key order. */
function collect(bus: Bus, subject: string, opts: { maxInFlight?: number; handler?: (m: BusMessage) => Promise<void>; decodeCheck?: (d: Uint8Array) => void; startHwm?: number } = {}) {
  const stop = new AbortController();
  const seen: number[] = [];
  const dead: { msg: BusMessage; reason: string }[] = [];
  // Like apply: progress survives a consumer restart.
  let hwm = opts.startHwm ?? 0;
  let gaps = 0;
  const consumer = bus.consume({
    subject,
    durable: 'test-durable',
    maxInFlight: opts.maxInFlight ?? 128,
    maxDeliveries: 3,
    signal: stop.signal,
    decodeCheck: opts.decodeCheck,
    onDeadLetter: (msg, reason) => dead.push({ msg, reason }),
    handler: async (m) => {
      await opts.handler?.(m);
      const n = readN(m.data);
      seen.push(n);
      if (n <= hwm) return; // redelivery: apply would skip it
      if (n !== hwm + 1) gaps += 1;
      hwm = n;
    },
  });
  return { consumer, seen, dead, stop, hwm: () => hwm, gaps: () => gaps };
}

describe.each(['nats', 'kafka'] as BusKind[])('bus contract on %s', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  async function setup(extra: { viaRegion?: string; publishTimeoutMs?: number } = {}) {
    const prefix = randomPrefix();
    const pub = testBus(env, kind, prefix, 'test-pub', extra);
    const sub = testBus(env, kind, prefix, 'test-sub');
    await pub.connect();
    await sub.connect();
    await pub.provision({ regions: [DEST] });
    cleanups.push(async () => {
      await pub.close();
      await sub.close();
      await dropPrefix(env, kind, prefix);
    });
    return { prefix, pub, sub, subject: changesSubject(prefix, DEST) };
  }
  afterAll(async () => {
    for (const c of cleanups.splice(0)) await c().catch((err: unknown) => console.error('cleanup failed', err));
  });

  it('delivers a stream in order, once, and stays in order across consumer restarts', async () => {
    const { sub, subject, pub } = await setup();
    await publishRange({ bus: pub, subject, key: SRC, from: 1, to: 1500 });
    // The first consumer stops at 700 whatever its speed: message 701 waits in its handler
    // until the stop, then fails, so it is never acknowledged by this consumer.
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const a = collect(sub, subject, {
      handler: async (m) => {
        if (readN(m.data) <= 700) return;
        await gate;
        throw new Error('consumer a is stopping');
      },
    });
    expect(await waitUntil(() => a.hwm() >= 700, 30_000)).toBe(true);
    a.stop.abort();
    release();
    await a.consumer.done;
    expect(a.hwm()).toBe(700);
    const b = collect(sub, subject, { startHwm: a.hwm() });
    expect(await waitUntil(() => b.hwm() === 1500, 60_000)).toBe(true);
    b.stop.abort();
    await b.consumer.done;
    expect(a.gaps() + b.gaps()).toBe(0);
    expect(a.seen.slice(0, 700)).toEqual(Array.from({ length: 700 }, (_, i) => i + 1));
    expect(b.seen[0]).toBeGreaterThan(1);
    expect(b.consumer.stats().acked).toBeGreaterThan(0);
  });

  it('two processes on one durable (a rolling update): what the stopping one held reaches the other, none lost', async () => {
    const { sub, pub, subject, prefix } = await setup();
    const other = testBus(env, kind, prefix, 'test-sub-new');
    await other.connect();
    cleanups.push(() => other.close());
    const total = 300;
    // The old process handles 20 messages, then blocks on the next one (like apply waiting
    // for a replication origin) until it is stopped, holding that one and those buffered
    // behind it. The new one handles everything it gets.
    const oldSeen = new Set<number>();
    const newSeen = new Set<number>();
    let oldBlocked = false;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const start = (bus: Bus, handler: (m: BusMessage) => Promise<void>) => {
      const stop = new AbortController();
      return { stop, consumer: bus.consume({ subject, durable: 'shared', maxInFlight: 64, maxDeliveries: 3, signal: stop.signal, handler }) };
    };
    const old = start(sub, async (m) => {
      if (oldSeen.size >= 20) {
        oldBlocked = true;
        await gate;
        throw new Error('old process stopping');
      }
      oldSeen.add(readN(m.data));
    });
    expect(await waitUntil(async () => (await attachedConsumers(env, kind, prefix, subject, 'shared')) >= 1, 30_000, 200)).toBe(true);
    const newOrder: number[] = [];
    const fresh = start(other, async (m) => {
      newSeen.add(readN(m.data));
      newOrder.push(readN(m.data));
    });
    await publishRange({ bus: pub, subject, key: SRC, from: 1, to: total });
    const union = () => new Set([...oldSeen, ...newSeen]).size;
    expect(await waitUntil(() => oldBlocked || union() === total, 30_000)).toBe(true);
    // On NATS the old one keeps the durable (its pin) while it runs, so it holds messages
    // when it stops; on Kafka either may own the partition.
    if (kind === 'nats') expect(oldBlocked).toBe(true);
    // NATS: the new one waits, and says so.
    if (kind === 'nats') expect(await waitUntil(() => fresh.consumer.stats().standby, 10_000)).toBe(true);
    old.stop.abort();
    release();
    await old.consumer.done;
    // Well inside ack_wait (60 s): what the old one held comes back at once (the new one
    // re-positions at the ack floor), not when its acknowledgement times out.
    expect(await waitUntil(() => union() === total, 30_000)).toBe(true);
    expect(fresh.consumer.stats().standby).toBe(false);
    fresh.stop.abort();
    await fresh.consumer.done;
    expect([...new Set([...oldSeen, ...newSeen])].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    // The new one took over in order: it never saw a message below one it had handled.
    expect(newOrder.every((n, i) => i === 0 || n > newOrder[i - 1]!)).toBe(true);
  });

  it('deduplicates a publish repeated with the same id', async () => {
    const { sub, pub, subject } = await setup();
    const first = await pub.publish(subject, payload(1), { id: 'dup-1', key: SRC });
    const again = await pub.publish(subject, payload(1), { id: 'dup-1', key: SRC });
    await pub.publish(subject, payload(2), { id: 'dup-2', key: SRC });
    expect(first.duplicate).toBe(false);
    expect(again.duplicate).toBe(true);
    const c = collect(sub, subject);
    expect(await waitUntil(() => c.hwm() === 2, 30_000)).toBe(true);
    expect(c.seen).toEqual([1, 2]);
    c.stop.abort();
    await c.consumer.done;
  });

  it('dead-letters a poison message and a message whose handler keeps failing; later messages flow', async () => {
    const { sub, pub, subject, prefix } = await setup();
    const codec = createCodec({});
    const good = codec.encode(exampleEnvelopes()[0]!);
    await pub.publish(subject, good, { id: 'g1', key: SRC });
    await pub.publish(subject, new TextEncoder().encode('{not json'), { id: 'poison', key: SRC });
    await pub.publish(subject, good, { id: 'fails', key: SRC });
    await pub.publish(subject, good, { id: 'g2', key: SRC });
    const stop = new AbortController();
    const handled: string[] = [];
    const dead: string[] = [];
    let failures = 0;
    const consumer = sub.consume({
      subject,
      durable: 'poison',
      maxDeliveries: 3,
      signal: stop.signal,
      decodeCheck: (d) => void codec.decode(d),
      onDeadLetter: (m, reason) => dead.push(`${m.id}: ${reason}`),
      handler: async (m) => {
        if (m.id === 'fails') {
          failures += 1;
          throw new Error('handler refuses');
        }
        handled.push(m.id ?? '?');
      },
    });
    expect(await waitUntil(() => handled.includes('g2'), 30_000)).toBe(true);
    expect(handled).toEqual(['g1', 'g2']);
    expect(failures).toBe(3);
    expect(dead[0]).toMatch(/^poison: undecodable: /);
    expect(dead[1]).toMatch(/^fails: handler failed 3 times: handler refuses/);
    expect(consumer.stats().deadLettered).toBe(2);
    stop.abort();
    await consumer.done;
    // Both copies are stored on the dead-letter subject, named after the original position.
    const ids: string[] = [];
    const stopDlq = new AbortController();
    const dlqConsumer = sub.consume({ subject: deadLetterSubject(prefix, subject), durable: 'dlq-reader', signal: stopDlq.signal, handler: async (m) => void ids.push(m.id ?? '') });
    expect(await waitUntil(() => ids.length >= 2, 30_000)).toBe(true);
    expect(ids.every((id) => id.startsWith(`${subject}@`))).toBe(true);
    stopDlq.abort();
    await dlqConsumer.done;
  });

  it('batch mode: hands fetched messages in order as batches, acknowledges after the batch, decodes once; a poison message is isolated and dead-lettered alone', async () => {
    const { sub, pub, subject } = await setup();
    await publishRange({ bus: pub, subject, key: SRC, from: 1, to: 300 });
    await pub.publish(subject, new TextEncoder().encode('{not json'), { id: 'undecodable', key: SRC });
    await publishRange({ bus: pub, subject, key: SRC, from: 301, to: 400 });
    const stop = new AbortController();
    const handled: number[] = [];
    const batchSizes: number[] = [];
    const dead: string[] = [];
    let decodes = 0;
    let notDecoded = 0;
    const consumer = sub.consume({
      subject,
      durable: 'batch',
      maxDeliveries: 3,
      maxBatch: 50,
      signal: stop.signal,
      decodeCheck: (d) => {
        decodes += 1;
        const n = readN(d);
        if (!Number.isInteger(n)) throw new Error('not a test payload');
        return n;
      },
      onDeadLetter: (m, reason) => dead.push(`${m.id}: ${reason}`),
      batchHandler: async (ms) => {
        // 250 is poison: the whole batch fails, then it is handled one by one.
        if (ms.some((m) => m.decoded === 250)) throw new Error('batch contains poison');
        batchSizes.push(ms.length);
        for (const m of ms) {
          if (typeof m.decoded !== 'number') notDecoded += 1;
          handled.push(m.decoded as number);
        }
      },
      handler: async (m) => {
        if (m.decoded === 250) throw new Error('poison');
        if (typeof m.decoded !== 'number') notDecoded += 1;
        handled.push(m.decoded as number);
      },
    });
    expect(await waitUntil(() => handled.includes(400), 60_000)).toBe(true);
    stop.abort();
    await consumer.done;
    const expected = Array.from({ length: 400 }, (_, i) => i + 1).filter((n) => n !== 250);
    expect(handled).toEqual(expected);
    expect(notDecoded).toBe(0);
    expect(Math.max(...batchSizes)).toBeGreaterThan(1);
    expect(Math.max(...batchSizes)).toBeLessThanOrEqual(50);
    expect(dead).toHaveLength(2);
    expect(dead.find((d) => d.startsWith('undecodable: '))).toMatch(/undecodable: not a test payload|undecodable: /);
    expect(dead.some((d) => /handler failed 3 times: poison/.test(d))).toBe(true);
    expect(consumer.stats().deadLettered).toBe(2);
    expect(consumer.stats().acked).toBe(401);
    // Decoded once per fetched message (plus at most the messages re-checked after a failed batch).
    expect(decodes).toBeLessThan(401 + 60);
    // Nothing is left unacknowledged: a new consumer of the same durable gets only what was
    // published after (a sentinel), nothing of the first 401.
    await publishRange({ bus: pub, subject, key: SRC, from: 401, to: 401 });
    const again: number[] = [];
    const stop2 = new AbortController();
    const c2 = sub.consume({ subject, durable: 'batch', signal: stop2.signal, batchHandler: async (ms) => void again.push(...ms.map((m) => readN(m.data))), handler: async (m) => void again.push(readN(m.data)) });
    expect(await waitUntil(() => again.length > 0, 60_000)).toBe(true);
    stop2.abort();
    await c2.done;
    expect(again).toEqual([401]);
  });

  it('bounds a batch by maxBatchBytes as well as by maxBatch', async () => {
    const { sub, pub, subject } = await setup();
    await publishRange({ bus: pub, subject, key: SRC, from: 1, to: 60, size: 10_000 });
    const stop = new AbortController();
    const handled: number[] = [];
    const batchBytes: number[] = [];
    const consumer = sub.consume({
      subject,
      durable: 'batch-bytes',
      maxBatch: 50,
      maxBatchBytes: 25_000,
      signal: stop.signal,
      batchHandler: async (ms) => {
        batchBytes.push(ms.reduce((a, m) => a + m.data.length, 0));
        for (const m of ms) handled.push(readN(m.data));
      },
      handler: async (m) => void handled.push(readN(m.data)),
    });
    expect(await waitUntil(() => handled.length >= 60, 60_000)).toBe(true);
    stop.abort();
    await consumer.done;
    expect(handled).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    // A batch grows while under the bound, so it ends at most one message (10 kB) past it.
    expect(Math.max(...batchBytes)).toBeLessThan(25_000 + 10_100);
    // Batching still happens (some batch held more than one message).
    expect(Math.max(...batchBytes)).toBeGreaterThan(10_100);
  });

  it('rejects an oversized payload before sending, naming size and limit', async () => {
    const { pub, subject } = await setup();
    const err = await pub.publish(subject, new Uint8Array(4 * 1024 * 1024 + 1), { id: 'big' }).catch((e: unknown) => e);
    expect(errorCode(err)).toBe('RS_PROTOCOL_TOO_LARGE');
    expect(isRetryable(err)).toBe(false);
    expect((err as Error).message).toContain('4194305 bytes');
    expect((err as Error).message).toContain('4194304 bytes');
  });

  it('stores small control state in a key-value bucket', async () => {
    const { pub, sub } = await setup();
    const a = await pub.kv('state');
    const b = await sub.kv('state');
    await a.put('slot.us-east-1', new TextEncoder().encode('0/16B3748'));
    await a.put('gone', new Uint8Array([1]));
    await a.delete('gone');
    expect(new TextDecoder().decode(await b.get('slot.us-east-1'))).toBe('0/16B3748');
    expect(await b.get('gone')).toBeUndefined();
    expect(await b.keys()).toEqual(['slot.us-east-1']);
  });

  it('keeps in-flight and memory bounded when the consumer is slower than the producer', async () => {
    const { pub, sub, subject } = await setup();
    const maxInFlight = 32;
    const heapBefore = process.memoryUsage().heapUsed;
    let maxSeen = 0;
    let maxHeap = 0;
    const c = collect(sub, subject, { maxInFlight, handler: () => new Promise((r) => setTimeout(r, 1)) });
    const sampler = setInterval(() => {
      maxSeen = Math.max(maxSeen, c.consumer.stats().inFlight);
      maxHeap = Math.max(maxHeap, process.memoryUsage().heapUsed);
    }, 5);
    // 3000 x 16 KiB = 48 MiB of backlog: far more than the consumer may hold.
    await publishRange({ bus: pub, subject, key: SRC, from: 1, to: 3000, size: 16 * 1024, window: 64 });
    expect(await waitUntil(() => c.hwm() === 3000, 120_000)).toBe(true);
    clearInterval(sampler);
    c.stop.abort();
    await c.consumer.done;
    expect(c.gaps()).toBe(0);
    expect(maxSeen).toBeGreaterThan(0);
    if (kind === 'nats') expect(maxSeen).toBeLessThanOrEqual(maxInFlight);
    expect(maxHeap - heapBefore).toBeLessThan(40 * 1024 * 1024);
  });

  it('loses nothing and processes nothing twice when the consumer process is SIGKILLed mid-stream', async () => {
    const { prefix, pub, subject } = await setup();
    const table = `bus_${prefix.replace(/\W/g, '_')}_${kind}`;
    const db = new pg.Client({ connectionString: env.regions[DEST]!.databaseUrl });
    await db.connect();
    try {
      await db.query(`CREATE TABLE ${table}_applied (id text NOT NULL, n int NOT NULL)`);
      await db.query(`CREATE TABLE ${table}_progress (key text PRIMARY KEY, hwm int NOT NULL)`);
      await db.query(`CREATE TABLE ${table}_violations (key text, expected int, got int)`);
      const count = async () => Number((await db.query<{ c: string }>(`SELECT count(*) AS c FROM ${table}_applied`)).rows[0]!.c);
      const spawnChild = () =>
        spawn(process.execPath, ['--conditions=@regionsync/source', '--import', 'tsx', 'src/testing/consumer-child.ts'], {
          cwd: pkgDir,
          stdio: ['ignore', 'pipe', 'inherit'],
          env: { ...process.env, BUS_KIND: kind, BUS_SERVERS: servers(env, kind).join(','), BUS_PREFIX: prefix, BUS_SUBJECT: subject, BUS_DURABLE: 'apply', DATABASE_URL: env.regions[DEST]!.databaseUrl, TABLE: table },
        });
      const total = 3000;
      const publishing = publishRange({ bus: pub, subject, key: SRC, from: 1, to: total });
      let child: ChildProcess = spawnChild();
      expect(await waitUntil(async () => (await count()) >= 600, 60_000)).toBe(true);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const atKill = await count();
      child = spawnChild();
      await publishing;
      expect(await waitUntil(async () => (await count()) >= total, 90_000, 200)).toBe(true);
      child.kill('SIGTERM');
      expect(await new Promise((r) => child.once('exit', r))).toBe(0);
      const { rows } = await db.query<{ c: string; d: string; lo: number; hi: number }>(`SELECT count(*) AS c, count(DISTINCT n) AS d, min(n) AS lo, max(n) AS hi FROM ${table}_applied`);
      expect(rows[0]).toEqual({ c: String(total), d: String(total), lo: 1, hi: total });
      expect((await db.query(`SELECT * FROM ${table}_violations`)).rows).toEqual([]);
      expect(atKill).toBeLessThan(total);
    } finally {
      for (const t of ['applied', 'progress', 'violations']) await db.query(`DROP TABLE IF EXISTS ${table}_${t}`);
      await db.end();
    }
  });

  it('loses nothing when the broker restarts mid-stream', async () => {
    const { pub, sub, subject } = await setup();
    const total = 3000;
    const c = collect(sub, subject);
    // The second half is published while the broker is down (so it must be retried) and
    // lands once it is back; the consumer is mid-stream throughout.
    await publishRange({ bus: pub, subject, key: SRC, from: 1, to: 1000 });
    await stopBroker(kind);
    let failedWhileDown = 0;
    const publishing = publishRange({ bus: pub, subject, key: SRC, from: 1001, to: total, onRetry: () => (failedWhileDown += 1) });
    expect(await waitUntil(() => failedWhileDown > 0, 60_000)).toBe(true);
    await startBroker(kind);
    const { retries } = await publishing;
    expect(await waitUntil(() => c.hwm() === total, 120_000, 100)).toBe(true);
    c.stop.abort();
    await c.consumer.done;
    expect(new Set(c.seen).size).toBe(total);
    expect(c.gaps()).toBe(0);
    expect(retries).toBeGreaterThan(0);
    expect(pub.health().connected).toBe(true);
  });

  it('a publish whose acknowledgement was lost never makes the next, different message count as stored', async () => {
    // The broker stores message 11 but its reply is dropped and the connection closed, so
    // the publisher cannot tell whether 11 was stored. A message confirmed after that must
    // really be stored. (kafkajs hands a failed request's sequence numbers to the next
    // records; the broker took message 12 for a repeat of 11 and acknowledged it unstored.)
    // The publish timeout is long enough for the client's own retries to give up first.
    const { pub, sub, subject } = await setup({ viaRegion: SRC, publishTimeoutMs: 20_000 });
    const c = collect(sub, subject);
    await publishRange({ bus: pub, subject, key: SRC, from: 1, to: 10 });
    expect(await waitUntil(() => c.hwm() === 10, 60_000, 100)).toBe(true);
    await dropReplies(SRC, kind, 500);
    let outcome: unknown;
    try {
      outcome = await pub.publish(subject, payload(11), { id: `${SRC}:11`, key: SRC }).then(
        () => 'confirmed',
        (err: unknown) => err,
      );
    } finally {
      await restoreReplies(SRC, kind);
    }
    expect(outcome).not.toBe('confirmed');
    // The situation under test: stored, though the publisher was told it failed.
    expect(await waitUntil(() => c.seen.includes(11), 60_000, 100)).toBe(true);
    // 12 alone, as the first record after the lost reply, then the rest.
    await publishRange({ bus: pub, subject, key: SRC, from: 12, to: 12 });
    await publishRange({ bus: pub, subject, key: SRC, from: 13, to: 20 });
    expect(await waitUntil(() => c.hwm() === 20, 60_000, 100)).toBe(true);
    c.stop.abort();
    await c.consumer.done;
    expect([...new Set(c.seen)].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(c.gaps()).toBe(0);
  });

  it('loses nothing when the publishing region is cut off and reconnected mid-stream', async () => {
    const { pub, sub, subject } = await setup({ viaRegion: SRC });
    const total = 3000;
    const c = collect(sub, subject);
    let confirmed = 0;
    let failures = 0;
    const publishing = publishRange({ bus: pub, subject, key: SRC, from: 1, to: total, onConfirmed: (n) => (confirmed = n), onRetry: () => (failures += 1) });
    try {
      expect(await waitUntil(() => confirmed >= 800, 60_000)).toBe(true);
      await cutLink(SRC, kind);
      // The cut is real: publishes fail (retryably) until the link is back.
      expect(await waitUntil(() => failures > 0, 60_000)).toBe(true);
    } finally {
      await restoreLink(SRC, kind);
    }
    const { retries } = await publishing;
    expect(await waitUntil(() => c.hwm() === total, 120_000, 100)).toBe(true);
    c.stop.abort();
    await c.consumer.done;
    expect(new Set(c.seen).size).toBe(total);
    expect(c.gaps()).toBe(0);
    expect(retries).toBeGreaterThan(0);
  });
});
