// The server-side echo filter: on PostgreSQL 16+ capture asks the walsender to leave out
// every transaction written under a replication origin (origin 'none'), which is safe only
// while regionsync's own origins are the only ones. The stack's third region runs 17, the
// second 15 (no such option): one cluster covers both.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Cluster, waitUntil } from '@regionsync/sandbox';
import { shutDownDatabase, startDatabase } from '@regionsync/stack';

const EU = 'eu-west-1';
const CENTRAL = 'eu-central-1';
const FOREIGN = 'user_native_sub';
let cluster: Cluster;

const health = async (region: string) => (await (await fetch(`${cluster.agents.get(region)!.httpUrl}/healthz`)).json()) as { originFilter: string | null };
const serverVersion = async (region: string) => Number((await cluster.query<{ v: string }>(region, `select current_setting('server_version_num') as v`))[0]!.v);

beforeAll(async () => {
  cluster = await Cluster.create({ database: 'agent_origins', broker: 'nats', regions: [EU, CENTRAL] });
  // Origins belong to the server, not the database: one left by an interrupted run would
  // keep the agent on 'any'.
  await cluster.query(CENTRAL, `select pg_replication_origin_drop(roname) from pg_replication_origin where roname = '${FOREIGN}'`);
  await cluster.startAll();
});
afterAll(async () => {
  await cluster?.stop();
});

describe('capture origin filter', () => {
  it("on PostgreSQL 16+ the server leaves applied transactions out (origin 'none'); on 15 capture drops them itself; both directions replicate", async () => {
    expect(await serverVersion(CENTRAL), `${CENTRAL} runs PostgreSQL 16+ on the stack`).toBeGreaterThanOrEqual(160000);
    expect(await serverVersion(EU), `${EU} runs PostgreSQL 15 on the stack`).toBeLessThan(160000);
    expect((await health(CENTRAL)).originFilter).toBe('none');
    expect((await health(EU)).originFilter).toBe('any');
    await cluster.query(EU, `insert into products (id, name, price_cents, stock, updated_at) values (960000, 'from 15', 1, 1, now())`);
    await cluster.query(CENTRAL, `insert into products (id, name, price_cents, stock, updated_at) values (960001, 'from 17', 1, 1, now())`);
    const both = async (region: string) => (await cluster.query(region, 'select 1 from products where id in (960000, 960001)')).length === 2;
    await waitUntil('both writes in both regions', async () => (await both(EU)) && (await both(CENTRAL)), 30_000);
    // Nothing came back as an echo: each region captured exactly its own transaction.
    const captured = async (region: string) => Number(/^regionsync_transactions_captured_total(?:\{[^}]*\})? (\d+)/m.exec(await (await fetch(`${cluster.agents.get(region)!.httpUrl}/metrics`)).text())?.[1]);
    expect(await captured(EU)).toBe(1);
    expect(await captured(CENTRAL)).toBe(1);
  });

  it("a fast shutdown of either region's server completes while its agent runs ('none' on 17, 'any' on 15), and replication resumes after the restart", async () => {
    // A fast shutdown waits until every walsender's client has confirmed the end of WAL; an
    // agent that only ever confirmed its last commit held the server up for as long as it
    // stayed connected, and shutDownDatabase rejects after pg_ctl's 60 s naming it.
    for (const region of [CENTRAL, EU]) {
      // The last WAL before the shutdown is a transaction of another database on the same
      // server: decoded by the walsender, never sent, so the agent sees no commit to confirm.
      const other = new URL(cluster.dbUrl(region));
      other.pathname = '/regionsync';
      const db = new pg.Client({ connectionString: other.toString() });
      await db.connect();
      try {
        await db.query('create table if not exists shutdown_probe (id serial primary key, at timestamptz)');
        await db.query('insert into shutdown_probe (at) values (now())');
      } finally {
        await db.end();
      }
      try {
        await shutDownDatabase(region);
      } finally {
        await startDatabase(region); // whatever happened, later tests need the server
      }
    }
    await cluster.query(EU, `insert into products (id, name, price_cents, stock, updated_at) values (960003, 'after restart 15', 1, 1, now())`);
    await cluster.query(CENTRAL, `insert into products (id, name, price_cents, stock, updated_at) values (960004, 'after restart 17', 1, 1, now())`);
    const both = async (region: string) => (await cluster.query(region, 'select 1 from products where id in (960003, 960004)')).length === 2;
    await waitUntil('both writes after the restarts in both regions', async () => (await both(EU)) && (await both(CENTRAL)), 60_000);
    expect((await health(CENTRAL)).originFilter).toBe('none');
  });

  it("a write under a foreign replication origin made while capture runs with 'none' is still forwarded: capture notices the origin before acknowledging past it and reads again with 'any'", async () => {
    const db = new pg.Client({ connectionString: cluster.dbUrl(CENTRAL) });
    await db.connect();
    try {
      await db.query(`select pg_replication_origin_create('${FOREIGN}')`);
      // A user's own replication tool writing under its origin (as a native subscription does).
      await db.query(`select pg_replication_origin_session_setup('${FOREIGN}')`);
      await db.query(`insert into products (id, name, price_cents, stock, updated_at) values (960002, 'foreign', 1, 1, now())`);
      await db.query(`select pg_replication_origin_session_reset()`);
      await waitUntil(`the foreign-origin write in ${EU}`, async () => (await cluster.query(EU, 'select 1 from products where id = 960002')).length === 1, 30_000);
      expect((await health(CENTRAL)).originFilter).toBe('any');
    } finally {
      await db.query(`select pg_replication_origin_session_reset() where pg_replication_origin_session_is_setup()`);
      await db.query(`select pg_replication_origin_drop('${FOREIGN}')`);
      await db.end();
    }
    // The origin gone, this process stays on 'any' (the server may still hold transactions
    // written under it that are not acknowledged yet); writes go on replicating.
    await cluster.query(CENTRAL, `update products set price_cents = 9 where id = 960002`);
    await waitUntil(`the next write in ${EU}`, async () => (await cluster.query<{ p: number }>(EU, 'select price_cents::int as p from products where id = 960002'))[0]?.p === 9, 30_000);
    expect((await health(CENTRAL)).originFilter).toBe('any');
  });
});
