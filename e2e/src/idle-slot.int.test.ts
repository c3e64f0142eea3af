// Issue 5 point 6: an idle regionsync database whose PostgreSQL cluster keeps producing WAL
// (another database on the same cluster writes: the realistic case, and the one where a
// slot that never advances retains WAL without bound). No write reaches the replicated
// database for E2E_IDLE_S (default 180 s: "several minutes" in CI; set it higher for a
// longer soak). Every agent's slot must keep advancing on its own (idle heartbeats) and
// retain at most about a minute of WAL; the agent's regionsync_slot_retained_wal_bytes
// metric shows it. Runs on both brokers: idle heartbeats are local logical messages, but
// the slot is only acknowledged through the same capture path that waits for the bus.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type Broker } from '@regionsync/sandbox';
import { endpoints, envNumber, lsnToBigInt, mb, metricSamples, slotPosition, freshPrefix } from './scenario-support.js';

const IDLE_MS = envNumber('E2E_IDLE_S', 180) * 1000;
const SAMPLE_EVERY_MS = 10_000;
const WINDOW_MS = 60_000; // the slot may retain about this much recent WAL
const SLACK_BYTES = 16 * 1024 * 1024; // one WAL segment and change
const NOISE_DB = 'e2e_idle_noise';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(['nats', 'kafka'] as Broker[])('idle database: the slot keeps advancing and its retained WAL stays bounded (%s)', (broker) => {
  let cluster: Cluster;
  const noise: pg.Client[] = [];

  beforeAll(async () => {
    cluster = await Cluster.create({ database: 'e2e_idle', broker, prefix: freshPrefix(`idle`) });
    await cluster.startAll();
    for (const r of cluster.regions) {
      const admin = new pg.Client({ connectionString: cluster.env.regions[r]!.databaseUrl });
      await admin.connect();
      try {
        if ((await admin.query('select 1 from pg_database where datname = $1', [NOISE_DB])).rowCount === 0) await admin.query(`create database ${NOISE_DB}`);
      } finally {
        await admin.end();
      }
      const u = new URL(cluster.env.regions[r]!.databaseUrl);
      u.pathname = `/${NOISE_DB}`;
      const c = new pg.Client({ connectionString: u.toString(), application_name: 'e2e-idle-noise' });
      await c.connect();
      await c.query('create table if not exists noise (id int primary key, pad text)');
      noise.push(c);
    }
  }, 900_000);

  afterAll(async () => {
    for (const c of noise) await c.end().catch(() => undefined);
    await cluster?.stop();
  }, 300_000);

  it(`retains a bounded amount of WAL over ${IDLE_MS / 1000} s without writes`, async () => {
    const agents = endpoints(cluster);
    // Let setup traffic settle: every slot confirmed past a fresh marker position.
    let stop = false;
    // ~2 MB of WAL per region every 5 s in the *other* database: the cluster is busy, ours is idle.
    const noisy = Promise.all(noise.map(async (c) => {
      while (!stop) {
        await c.query(`insert into noise select g, repeat(md5(g::text), 8) from generate_series(1, 5000) g on conflict (id) do update set pad = excluded.pad`);
        await sleep(5000);
      }
    }));
    noisy.catch(() => undefined);
    const t0 = Date.now();
    const start: Record<string, Awaited<ReturnType<typeof slotPosition>>> = {};
    for (const r of cluster.regions) start[r] = await slotPosition(cluster, r);
    const history: Record<string, { t: number; lsn: bigint }[]> = Object.fromEntries(cluster.regions.map((r) => [r, []]));
    const series: Record<string, { t: number; retainedMb: number; metricMb: number; boundMb: number }[]> = Object.fromEntries(cluster.regions.map((r) => [r, []]));
    const problems: string[] = [];
    const rowsBefore: Record<string, number> = {};
    for (const r of cluster.regions) rowsBefore[r] = (await cluster.query<{ n: number }>(r, 'select count(*)::int as n from regionsync.row_versions'))[0]!.n;
    try {
      while (Date.now() - t0 < IDLE_MS) {
        await sleep(SAMPLE_EVERY_MS);
        const t = Date.now() - t0;
        for (const a of agents) {
          const s = await slotPosition(cluster, a.region);
          const cur = lsnToBigInt(s.current);
          const h = history[a.region]!;
          h.push({ t, lsn: cur });
          const ref = [...h].reverse().find((x) => t - x.t >= WINDOW_MS) ?? { lsn: lsnToBigInt(start[a.region]!.current) };
          const bound = Number(cur - ref.lsn) + SLACK_BYTES;
          const metric = (await metricSamples(a.httpUrl, 'regionsync_slot_retained_wal_bytes'))[0]?.value;
          series[a.region]!.push({ t, retainedMb: mb(s.retained), metricMb: metric === undefined ? -1 : mb(metric), boundMb: mb(bound) });
          if (s.retained > bound) problems.push(`${a.region} t=${t} ms: slot retains ${mb(s.retained)} MB, more than the last minute of WAL + slack (${mb(bound)} MB)`);
          if (metric === undefined) problems.push(`${a.region} t=${t} ms: no regionsync_slot_retained_wal_bytes metric`);
          else if (metric > bound) problems.push(`${a.region} t=${t} ms: metric says ${mb(metric)} MB retained, bound ${mb(bound)} MB`);
          if (!s.active) problems.push(`${a.region} t=${t} ms: slot not active`);
        }
      }
    } finally {
      stop = true;
      await noisy.catch(() => undefined);
    }
    const report: Record<string, unknown> = {};
    for (const r of cluster.regions) {
      const end = await slotPosition(cluster, r);
      const walMb = mb(Number(lsnToBigInt(end.current) - lsnToBigInt(start[r]!.current)));
      const maxRetainedMb = Math.max(...series[r]!.map((x) => x.retainedMb));
      report[r] = { walGeneratedMb: walMb, maxRetainedMb, maxMetricMb: Math.max(...series[r]!.map((x) => x.metricMb)), restartLsn: { start: start[r]!.restart, end: end.restart }, confirmed: { start: start[r]!.confirmed, end: end.confirmed }, series: series[r]!.map((x) => `${Math.round(x.t / 1000)}s:${x.retainedMb}/${x.metricMb}MB`) };
      // The cluster produced far more WAL than the slot held: the slot advanced with it.
      expect(lsnToBigInt(end.restart), `${r} restart_lsn advanced`).toBeGreaterThan(lsnToBigInt(start[r]!.restart));
      expect(lsnToBigInt(end.confirmed), `${r} confirmed_flush_lsn advanced`).toBeGreaterThan(lsnToBigInt(start[r]!.confirmed));
      expect(walMb, `${r}: WAL generated during the idle window exceeds what the slot held`).toBeGreaterThan(maxRetainedMb);
      // Idle: nothing was written to the replicated tables.
      expect((await cluster.query<{ n: number }>(r, 'select count(*)::int as n from regionsync.row_versions'))[0]!.n).toBe(rowsBefore[r]);
    }
    console.log(`[idle ${broker}] figures ${JSON.stringify({ broker, idleS: IDLE_MS / 1000, sampleEveryS: SAMPLE_EVERY_MS / 1000, regions: report })}`);
    expect(problems).toEqual([]);
  }, IDLE_MS + 300_000);
});
