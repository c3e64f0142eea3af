// A schema as applications write them, not the demo's: an identity key, a generated column,
// a foreign key with ON DELETE CASCADE and a partitioned table. The features live in the
// database, not the bus, so this runs on one broker (NATS).
import { afterAll, describe, expect, it } from 'vitest';
import { Cluster, waitUntil } from '@regionsync/sandbox';
import { tablesConverged } from './scenario-support.js';

const US = 'us-east-1';
const EU = 'eu-west-1';
const TABLES = ['public.accounts', 'public.entries', 'public.events'];

const SCHEMA = `
create table if not exists public.accounts (id uuid primary key, name text not null, updated_at timestamptz);
create table if not exists public.entries (
  id bigint generated always as identity primary key,
  account_id uuid not null references public.accounts (id) on delete cascade,
  amount bigint not null,
  doubled bigint generated always as (amount * 2) stored,
  note text);
create table if not exists public.events (id uuid not null, at timestamptz not null, kind text, primary key (id, at)) partition by range (at);
create table if not exists public.events_2026 partition of public.events for values from ('2026-01-01') to ('2027-01-01');
create table if not exists public.events_2027 partition of public.events for values from ('2027-01-01') to ('2028-01-01');
`;

describe('an application schema on nats (2 regions)', () => {
  let cluster: Cluster | undefined;
  afterAll(async () => {
    await cluster?.stop();
  });

  it('identity keys, generated columns, a cascading foreign key and a partitioned table replicate, and a foreign-key conflict does not stop apply', async () => {
    cluster = await Cluster.create({
      database: 'e2e_schema_features',
      broker: 'nats',
      regions: [US, EU],
      schemaSql: SCHEMA,
      tables: TABLES.map((name) => ({ name, strategy: 'row-lww' as const, counterColumns: [] as string[] })),
    });
    const c = cluster;
    // Identity values that never collide between the regions: odd here, even there.
    await c.query(US, 'alter table public.entries alter column id restart with 1 set increment by 2');
    await c.query(EU, 'alter table public.entries alter column id restart with 2 set increment by 2');
    await c.startAll();

    const a = '00000000-0000-4000-8000-00000000000a';
    const b = '00000000-0000-4000-8000-00000000000b';
    await c.query(US, `insert into accounts values ($1, 'alice', now()), ($2, 'bob', now())`, [a, b]);
    await c.query(US, `insert into entries (account_id, amount, note) select $1::uuid, g, 'us ' || g from generate_series(1, 20) g`, [a]);
    await c.query(US, `insert into entries (account_id, amount, note) values ($1, 5, 'bob us')`, [b]);
    await c.query(US, `insert into events select gen_random_uuid(), timestamptz '2026-06-01' + g * interval '1 day', 'k' || g from generate_series(1, 300) g`);
    await waitUntil('accounts in eu-west-1', async () => (await c.query(EU, 'select 1 from accounts')).length === 2, 60_000);
    await c.query(EU, `insert into entries (account_id, amount, note) select $1::uuid, g, 'eu ' || g from generate_series(1, 20) g`, [a]);
    await c.query(EU, `update entries set amount = amount + 100 where note like 'us %' and amount <= 5`);
    await c.query(EU, `delete from events where kind in ('k1', 'k2', 'k3')`);
    // Moves rows between partitions: a delete from one and an insert into the other, in one update.
    await c.query(US, `update events set at = at + interval '1 year' where kind in ('k10', 'k11')`);
    await waitUntil('both regions converged', () => tablesConverged(c, TABLES), 120_000);
    const counts = await c.query<{ n: number; parts: number }>(EU, `select count(*)::int as n, count(distinct tableoid)::int as parts from events`);
    expect(counts[0]).toEqual({ n: 297, parts: 2 });
    const doubled = await c.query<{ bad: number }>(EU, 'select count(*)::int as bad from entries where doubled <> amount * 2');
    expect(doubled[0]!.bad).toBe(0);

    // The foreign-key conflict: eu-west-1 deletes bob (its cascade deletes his entries) while
    // us-east-1, not hearing of it yet, adds an entry for him. Applying that entry in
    // eu-west-1 has no parent row there; apply must not stop on it (it would retry that
    // message forever, and every later change from us-east-1 would wait behind it).
    await c.stopAgent(US);
    await c.query(EU, 'delete from accounts where id = $1', [b]);
    await c.query(US, `insert into entries (account_id, amount, note) values ($1, 7, 'bob us late')`, [b]);
    await c.startAgent(US);
    await waitUntil('bob deleted in us-east-1', async () => (await c.query(US, 'select 1 from accounts where id = $1', [b])).length === 0, 60_000);
    // Later writes still flow both ways.
    await c.query(US, `insert into entries (account_id, amount, note) values ($1, 1, 'after us')`, [a]);
    await c.query(EU, `insert into entries (account_id, amount, note) values ($1, 1, 'after eu')`, [a]);
    await waitUntil('both regions converged after the conflict', () => tablesConverged(c, TABLES), 120_000);
    for (const r of [US, EU]) {
      const notes = await c.query<{ note: string }>(r, `select note from entries where note in ('after us', 'after eu', 'bob us', 'bob us late') order by note`);
      // Both regions hold the same rows: the entry written concurrently with its account's
      // delete stays, as PostgreSQL's own logical replication would leave it.
      expect(notes.map((n) => n.note)).toEqual(['after eu', 'after us', 'bob us late']);
    }
  });
});
