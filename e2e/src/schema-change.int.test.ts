// Issue 5.4: schema changes while writes flow are detected, pause only the affected table,
// and the documented procedure (same DDL in every region) resumes it with no loss.
import { afterAll, describe, expect, it } from 'vitest';
import { Cluster, checksumSql, waitUntil } from '@regionsync/sandbox';

const US = 'us-east-1';
const EU = 'eu-west-1';

async function health(c: Cluster, region: string): Promise<{ pausedTables: string[] }> {
  return (await (await fetch(`${c.agents.get(region)!.httpUrl}/healthz`)).json()) as { pausedTables: string[] };
}

async function pausedMetric(c: Cluster, region: string, table: string): Promise<number> {
  const text = await (await fetch(`${c.agents.get(region)!.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('regionsync_table_paused{') && l.includes(`table="${table}"`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

async function sameChecksum(c: Cluster, table: string): Promise<boolean> {
  const [a] = await c.query<{ sum: string }>(US, checksumSql(table));
  const [b] = await c.query<{ sum: string }>(EU, checksumSql(table));
  return a!.sum === b!.sum;
}

describe.each(['nats', 'kafka'] as const)('schema changes on %s', (broker) => {
  let cluster: Cluster;
  afterAll(async () => {
    await cluster?.stop();
  });

  it('detects add column / drop column / change type, pauses only that table, and the procedure resumes it', async () => {
    cluster = await Cluster.create({ database: `e2e_schema_${broker}`, broker, regions: [US, EU] });
    await cluster.startAll();
    let product = 1;
    const writeProduct = async () => cluster.query(US, `insert into products values ($1, 'p', 10, 5, now())`, [product++]);
    await cluster.query(US, `insert into users values (gen_random_uuid(), $1, 'before@x', 'Before', now())`, [US]);
    await waitUntil('first user replicated', async () => (await cluster.query(EU, 'select 1 from users')).length === 1, 60_000);

    // 1. add column in the source only; writes keep flowing on both tables
    await cluster.query(US, 'alter table users add column nickname text');
    for (let i = 0; i < 5; i++) await cluster.query(US, `insert into users values (gen_random_uuid(), $1, $2, 'After', now(), $3)`, [US, `after${i}@x`, `nick${i}`]);
    await writeProduct();
    await waitUntil('users paused in eu-west-1', async () => (await health(cluster, EU)).pausedTables.includes('public.users'), 60_000);
    expect(await pausedMetric(cluster, EU, 'public.users')).toBe(1);
    await writeProduct();
    await waitUntil('products keep flowing while users is paused', async () => (await cluster.query(EU, 'select 1 from products')).length === product - 1, 60_000);
    expect((await cluster.query(EU, 'select 1 from users')).length).toBe(1);
    expect(await pausedMetric(cluster, EU, 'public.products')).toBe(0);
    // procedure: the same DDL in the other region resumes the table and replays what was parked
    await cluster.query(EU, 'alter table users add column nickname text');
    await waitUntil('users resumed and converged', async () => (await health(cluster, EU)).pausedTables.length === 0 && (await sameChecksum(cluster, 'users')), 60_000);
    expect((await cluster.query<{ n: number }>(EU, "select count(*)::int as n from users where nickname like 'nick%'"))[0]!.n).toBe(5);
    expect(await pausedMetric(cluster, EU, 'public.users')).toBe(0);

    // 2. drop column: detected, then resumed when dropped everywhere
    await cluster.query(US, 'alter table users drop column nickname');
    await cluster.query(US, `insert into users values (gen_random_uuid(), $1, 'dropped@x', 'Dropped', now())`, [US]);
    await waitUntil('users paused after drop column', async () => (await health(cluster, EU)).pausedTables.includes('public.users'), 60_000);
    await cluster.query(EU, 'alter table users drop column nickname');
    await waitUntil('users resumed after drop column', async () => (await health(cluster, EU)).pausedTables.length === 0 && (await sameChecksum(cluster, 'users')), 60_000);

    // 3. change type: detected, then resumed when changed everywhere
    await cluster.query(US, 'alter table products alter column price_cents type numeric(14,2)');
    await cluster.query(US, `update products set price_cents = 12.5 where id = 1`);
    await waitUntil('products paused after type change', async () => (await health(cluster, EU)).pausedTables.includes('public.products'), 60_000);
    await cluster.query(US, `insert into users values (gen_random_uuid(), $1, 'still@x', 'Still', now())`, [US]);
    await waitUntil('users still flow while products is paused', async () => await sameChecksum(cluster, 'users'), 60_000);
    await cluster.query(EU, 'alter table products alter column price_cents type numeric(14,2)');
    await waitUntil('products resumed after type change', async () => (await health(cluster, EU)).pausedTables.length === 0 && (await sameChecksum(cluster, 'products')), 60_000);
    expect((await cluster.query<{ p: string }>(EU, 'select price_cents::text as p from products where id = 1'))[0]!.p).toBe('12.50');
  }, 600_000);
});
