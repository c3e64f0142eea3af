// A region's slot loses its WAL, on NATS and on Kafka: the region (its own PostgreSQL, with
// max_slot_wal_keep_size at 1 MB so the loss takes seconds, not hours) keeps writing while its
// agent is away, and enough WAL passes for a checkpoint to invalidate the slot. The changes
// it made meanwhile can never be decoded again. When the agent comes back it must say so
// (RS_REPLICATION_SLOT_LOST in the log, regionsync_capture_slots_lost_total, slotsLost in
// /healthz), re-create the slot and send every region a full copy of what it holds: the
// inserts, deletes (tombstones) and counter increments made while away reach every region,
// counters stay exact, and writes after the recovery stream again as usual. Then the slot is
// dropped under the running agent while the region writes: the agent notices at its
// reconnect, re-creates it and sends the copy, and no write around the drop is lost.
// Last, the copy of a large table (E2E_COPY_ROWS, default 200,000) grows the agent's RSS by
// less than E2E_COPY_RSS_GROWTH_MB (default 64): the snapshot reads through a cursor.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { resolveLayout, startScratchPostgres, stopScratchPostgres } from '@regionsync/stack';
import { Cluster, waitUntil } from '@regionsync/sandbox';
import { agentHealth, dropSlotUnderAgent, envNumber, metricSamples, RssSampler, tablesConverged } from './scenario-support.js';

const HOME = 'us-east-1';
const LOSER = 'ap-southeast-1';
const TABLES = ['public.users', 'public.orders', 'public.products', 'public.documents'];
const COPY_ROWS = envNumber('E2E_COPY_ROWS', 200_000);
// Growth of the agent's RSS over the copy: reading a table whole grew it by 125 MB at
// 200,000 rows (105 -> 230 MB); through the cursor it grows by 15-30 MB.
const RSS_GROWTH_MB = envNumber('E2E_COPY_RSS_GROWTH_MB', 64);

/** How many full copies after a lost slot the agent's log reports. */
function copiesLogged(logPath: string): number {
  return readFileSync(logPath, 'utf8').split('slot re-created; full copy sent').length - 1;
}

describe.each(['nats', 'kafka'] as const)('replication slot lost on %s', (broker) => {
  const layout = resolveLayout();
  const scratch = `slotlost-${broker}`;
  let cluster: Cluster | undefined;
  afterAll(async () => {
    await cluster?.stop();
    await stopScratchPostgres(layout, scratch);
  }, 300_000);

  it('a slot invalidated while its agent was away is re-created and every region gets a full copy: nothing the region wrote meanwhile is lost', async () => {
    const url = await startScratchPostgres(layout, scratch, layout.ports.postgres(0) + 82 + (broker === 'kafka' ? 1 : 0), {});
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query(`alter system set max_slot_wal_keep_size = '1MB'`);
      await admin.query('select pg_reload_conf()');
    } finally {
      await admin.end();
    }
    cluster = await Cluster.create({ database: `e2e_slot_${broker}`, broker, regions: [HOME, 'eu-west-1', LOSER], extraRegions: { [LOSER]: { databaseUrl: url } } });
    const c = cluster;
    await c.startAll();
    await c.query(HOME, `insert into products select g, 'p' || g, 100, 50, now() from generate_series(1, 20) g`);
    await c.query(LOSER, `insert into users select gen_random_uuid(), $1, 'before' || g || '@x', 'Before ' || g, now() from generate_series(1, 100) g`, [LOSER]);
    await waitUntil('3 regions converged before the loss', () => tablesConverged(c, TABLES), 120_000);

    // The agent is away; its region keeps writing: inserts, deletes, counter increments.
    expect(await c.stopAgent(LOSER, 'SIGTERM')).toBe(0);
    await c.query(LOSER, `insert into users select gen_random_uuid(), $1, 'away' || g || '@x', 'Away ' || g, now() from generate_series(1, 300) g`, [LOSER]);
    await c.query(LOSER, `delete from users where email like 'before%' and email <= 'before3'`);
    await c.query(LOSER, `update products set stock = stock + 5 where id <= 10`);
    const [{ deleted }] = await c.query<{ deleted: number }>(LOSER, `select (100 - count(*))::int as deleted from users where email like 'before%'`);
    expect(deleted).toBeGreaterThan(0);
    // WAL passes (non-transactional logical messages, 1 MB each) until a checkpoint
    // invalidates the slot.
    await waitUntil(`${LOSER} slot invalidated`, async () => {
      await c.query(LOSER, `select pg_logical_emit_message(false, 'e2e-filler', repeat('x', 1048576)) from generate_series(1, 20)`);
      await c.query(LOSER, 'select pg_switch_wal()');
      await c.query(LOSER, 'checkpoint');
      const r = await c.query<{ wal_status: string }>(LOSER, `select wal_status from pg_replication_slots where database = current_database()`);
      return r[0]?.wal_status === 'lost';
    }, 120_000, 0);

    const handle = await c.startAgent(LOSER, 180_000);
    await waitUntil('3 regions converged after the slot was re-created', () => tablesConverged(c, TABLES), 240_000);
    for (const r of c.regions) {
      const [u] = await c.query<{ away: number; before: number }>(r, `select count(*) filter (where email like 'away%')::int as away, count(*) filter (where email like 'before%')::int as before from users`);
      expect(u, r).toEqual({ away: 300, before: 100 - deleted });
      const [p] = await c.query<{ s: string }>(r, 'select sum(stock)::text as s from products');
      expect(Number(p!.s), `${r} total stock`).toBe(20 * 50 + 10 * 5);
    }
    expect((await agentHealth(handle.httpUrl)).slotsLost, 'slotsLost in /healthz').toBe(1);
    const lost = await metricSamples(handle.httpUrl, 'regionsync_capture_slots_lost_total');
    expect(lost[0]?.value).toBe(1);
    const [slot] = await c.query<{ wal_status: string }>(LOSER, `select wal_status from pg_replication_slots where database = current_database()`);
    expect(slot!.wal_status).not.toBe('lost');

    // Streaming goes on from the new slot.
    await c.query(LOSER, `insert into users values (gen_random_uuid(), $1, 'after@x', 'After', now())`, [LOSER]);
    await c.query(LOSER, `update products set stock = stock - 1 where id = 1`);
    await waitUntil('a write after the recovery reaches every region', async () => {
      for (const r of c.regions) {
        const [x] = await c.query<{ n: number; s: string }>(r, `select (select count(*)::int from users where email = 'after@x') as n, (select stock::text from products where id = 1) as s`);
        if (x!.n !== 1 || x!.s !== '54') return false;
      }
      return true;
    }, 60_000);
  }, 900_000);

  it('a slot dropped under the running agent is re-created and the writes around the drop reach every region', async () => {
    const c = cluster!;
    const handle = c.agents.get(LOSER)!;
    const lostBefore = (await agentHealth(handle.httpUrl)).slotsLost ?? 0;
    // A writer keeps committing in the region while the slot is taken away from its agent:
    // whatever commits between the drop and the new slot is in no slot's WAL.
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        await c.query(LOSER, `insert into users values (gen_random_uuid(), $1, 'drop' || $2 || '@x', 'Drop', now())`, [LOSER, written]);
        await c.query(LOSER, `update products set stock = stock + 1 where id = 2`);
        written += 1;
      }
    })();
    try {
      await waitUntil('some writes before the drop', async () => written >= 20, 30_000);
      // The agent reconnects within a few hundred ms of losing its walsender: terminate and
      // drop until a drop lands while the slot is inactive.
      await dropSlotUnderAgent(c, LOSER);
      await waitUntil(`${LOSER} agent re-created its slot`, async () => ((await agentHealth(handle.httpUrl)).slotsLost ?? 0) > lostBefore, 60_000, 100);
      const at = written;
      await waitUntil('some writes after the new slot', async () => written >= at + 20, 30_000);
    } finally {
      writing = false;
      await writer;
    }
    await waitUntil('3 regions converged after the drop', () => tablesConverged(c, TABLES), 240_000);
    for (const r of c.regions) {
      const [x] = await c.query<{ n: number; s: string }>(r, `select (select count(*)::int from users where email like 'drop%') as n, (select stock::text from products where id = 2) as s`);
      expect(x, r).toEqual({ n: written, s: String(50 + 5 + written) });
    }
    expect(handle.process!.exitCode, 'the same agent throughout').toBeNull();
  }, 600_000);

  it(`the full copy of a ${COPY_ROWS}-row table keeps the agent's memory bounded`, async () => {
    const c = cluster!;
    await c.query(HOME, `insert into users select gen_random_uuid(), $1, 'bulk' || g || '@example.com', 'Bulk user ' || g, now() from generate_series(1, $2::int) g`, [HOME, COPY_ROWS]);
    await waitUntil('the bulk rows everywhere', () => tablesConverged(c, ['public.users']), 300_000);
    const handle = c.agents.get(HOME)!;
    const lostBefore = (await agentHealth(handle.httpUrl)).slotsLost ?? 0;
    const copiesBefore = copiesLogged(handle.logPath);
    const rss = new RssSampler(c, [HOME], 100).start();
    try {
      await dropSlotUnderAgent(c, HOME);
      const from = Date.now();
      await waitUntil(`${HOME} re-created its slot and sent the copy`, async () => ((await agentHealth(handle.httpUrl)).slotsLost ?? 0) > lostBefore && copiesLogged(handle.logPath) > copiesBefore, 300_000, 100);
      const copyMs = Date.now() - from;
      rss.stop();
      const growthMb = (rss.peakBytes(HOME) - rss.series.get(HOME)!.samples[0]!.bytes) / 1048576;
      console.log(`[slot-lost ${broker}] copy of ${COPY_ROWS} rows to 2 regions in ${copyMs} ms, agent RSS ${JSON.stringify(rss.summary()[HOME])}`);
      expect(growthMb, `${HOME} agent RSS growth over the copy (MB), bound ${RSS_GROWTH_MB}`).toBeLessThan(RSS_GROWTH_MB);
    } finally {
      rss.stop();
    }
    await waitUntil('3 regions converged after the copy', () => tablesConverged(c, TABLES), 240_000);
  }, 900_000);
});
