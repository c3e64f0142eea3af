// Issue 5.7: a fourth region with an empty database joins a running 3-region cluster that
// already holds data (writes keep flowing during the join), and a table is added to a
// running configuration. Each gets an initial copy plus catch-up: checksums prove no gap
// and no duplicate.
import { afterAll, describe, expect, it } from 'vitest';
import { resolveLayout, startScratchPostgres, stopScratchPostgres } from '@regionsync/stack';
import { Cluster, DEMO_TABLES, waitUntil } from '@regionsync/sandbox';
import { tablesConverged } from './scenario-support.js';

const REGIONS = ['us-east-1', 'eu-west-1', 'eu-central-1'];
const JOINER = 'ap-southeast-1';
const TABLES = ['public.users', 'public.orders', 'public.products', 'public.documents'];

describe.each(['nats', 'kafka'] as const)('joining on %s', (broker) => {
  const layout = resolveLayout();
  let cluster: Cluster | undefined;
  afterAll(async () => {
    await cluster?.stop();
    await stopScratchPostgres(layout, `join-${broker}`);
  });

  it('a new region gets an initial copy plus catch-up, and so does a newly added table', async () => {
    cluster = await Cluster.create({ database: `e2e_join_${broker}`, broker, regions: [...REGIONS] });
    const c = cluster;
    await c.startAll();
    // Data before the join: inserts, updates, deletes (tombstones) and counter increments everywhere.
    for (const [i, r] of REGIONS.entries()) {
      await c.query(r, `insert into users select gen_random_uuid(), $1, 'u' || g || '@x', 'User ' || g, now() from generate_series(1, 300) g`, [r]);
      await c.query(r, `insert into products select g, 'p' || g, 100, 50, now() from generate_series($1::int, $1::int + 49) g`, [i * 100 + 1]);
    }
    await waitUntil('3 regions converged before the join', () => tablesConverged(c, TABLES), 120_000);
    for (const r of REGIONS) {
      await c.query(r, `update products set stock = stock - 7 where id % 3 = 0`);
      await c.query(r, `delete from users where ctid in (select ctid from users where home_region = $1 limit 20)`, [r]);
    }
    await waitUntil('3 regions converged with deletes and counters', () => tablesConverged(c, TABLES), 120_000);

    // Writes keep flowing in us-east-1 while the fourth region joins.
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        await c.query('us-east-1', `insert into users values (gen_random_uuid(), 'us-east-1', 'during@x', 'During', now())`);
        await c.query('us-east-1', `update products set stock = stock + 1 where id = 3`);
        written += 1;
      }
    })();
    const url = await startScratchPostgres(layout, `join-${broker}`, layout.ports.postgres(0) + 80 + (broker === 'kafka' ? 1 : 0), {});
    await c.addRegion(JOINER, url);
    await waitUntil('some writes during the join', async () => written >= 20, 60_000);
    writing = false;
    await writer;
    await waitUntil('4 regions converged after the join', () => tablesConverged(c, TABLES), 180_000);
    const [{ n }] = await c.query<{ n: number }>(JOINER, 'select count(*)::int as n from users');
    expect(n).toBe(3 * 300 - 3 * 20 + written);
    const [{ s }] = await c.query<{ s: string }>(JOINER, 'select stock::text as s from products where id = 3');
    expect(Number(s)).toBe(50 - 7 * 3 + written);
    // Deleted rows stayed deleted in the newcomer (tombstones travelled with the copy).
    const [{ t }] = await c.query<{ t: number }>(JOINER, `select count(*)::int as t from regionsync.row_versions where table_name = 'public.users' and deleted`);
    expect(t).toBe(60);

    // A table added to the running configuration: rows written before it was replicated reach every region.
    for (const r of c.regions) await c.query(r, 'create table if not exists public.extra (id bigint primary key, v text)');
    await c.query('eu-west-1', `insert into extra select g, 'eu' || g from generate_series(1, 500) g`);
    await c.query(JOINER, `insert into extra select g, 'ap' || g from generate_series(1001, 1200) g`);
    await c.setTables([...DEMO_TABLES, { name: 'public.extra', strategy: 'row-lww', counterColumns: [] }]);
    await c.query('us-east-1', `insert into extra values (5000, 'after')`);
    await waitUntil('added table converged everywhere', () => tablesConverged(c, [...TABLES, 'public.extra']), 180_000);
    for (const r of c.regions) expect((await c.query<{ n: number }>(r, 'select count(*)::int as n from extra'))[0]!.n).toBe(701);
  }, 900_000);
});
