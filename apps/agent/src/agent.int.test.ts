// The agent as a process on the real stack: prerequisites, acknowledgement only after the
// bus confirmed, health/metrics, drain on SIGTERM, no row values in logs, exactly-once apply.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { pino } from 'pino';
import { cutLink, resolveLayout, restoreLink } from '@regionsync/stack';
import { Cluster, waitUntil } from '@regionsync/sandbox';
import { compareLsn, errorCode, formatHlc, type ChangeBody } from '@regionsync/protocol';
import { Registry } from 'prom-client';
import { Applier, APPLIED_MESSAGES_GC_SQL, createReplicationMetrics, loadTableInfo, originName, setupDatabase, sqlJson, sqlText, sqlTextArray, TableSql, TxPipeline } from '@regionsync/replication';

const US = 'us-east-1';
const EU = 'eu-west-1';
let cluster: Cluster;

async function confirmedFlush(region: string): Promise<string> {
  const r = await cluster.query<{ lsn: string }>(region, `select confirmed_flush_lsn::text as lsn from pg_replication_slots where slot_name like 'regionsync_agent_ops_%'`);
  return r[0]!.lsn;
}

/** A session of its own on a region's database, for tests that set session state. */
async function withDb<T>(region: string, fn: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({ connectionString: cluster.dbUrl(region) });
  await db.connect();
  try {
    return await fn(db);
  } finally {
    await db.end();
  }
}

beforeAll(async () => {
  cluster = await Cluster.create({ database: 'agent_ops', broker: 'nats', regions: [US, EU] });
  await cluster.startAll();
});
afterAll(async () => {
  await restoreLink(US, 'nats').catch(() => undefined);
  await cluster?.stop();
});

describe('agent on the real stack', () => {
  it('refuses a table without a primary key, naming the table and the fix', async () => {
    await withDb(US, async (db) => {
      await db.query('create table if not exists public.no_pk (a int)');
      const err = await setupDatabase(db, { region: US, database: 'agent_ops', regions: [US, EU], tables: [{ name: 'public.no_pk', strategy: 'row-lww', counterColumns: [] }] }).catch((e: unknown) => e as Error);
      expect(errorCode(err)).toBe('RS_REPLICATION_PREREQUISITE');
      expect((err as Error).message).toMatch(/public\.no_pk has no primary key.*ADD PRIMARY KEY/);
      const missing = await setupDatabase(db, { region: US, database: 'agent_ops', regions: [US, EU], tables: [{ name: 'public.nope', strategy: 'row-lww', counterColumns: [] }] }).catch((e: unknown) => e as Error);
      expect((missing as Error).message).toMatch(/public\.nope does not exist/);
    });
  });

  it('serves /healthz, /readyz and Prometheus /metrics', async () => {
    const h = cluster.agents.get(US)!;
    const health = (await (await fetch(`${h.httpUrl}/healthz`)).json()) as { mode: string; region: string };
    expect(health).toMatchObject({ region: US, mode: 'connected' });
    expect((await fetch(`${h.httpUrl}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${h.httpUrl}/metrics`)).text();
    for (const name of ['regionsync_lag_seconds', 'regionsync_capture_delay_seconds', 'regionsync_apply_delay_seconds', 'regionsync_transactions_captured_total', 'regionsync_rows_captured_total', 'regionsync_transactions_applied_total', 'regionsync_rows_applied_total', 'regionsync_conflicts_total', 'regionsync_slot_retained_wal_bytes', 'regionsync_bus_errors_total']) {
      expect(metrics, name).toContain(name);
    }
  });

  it('applies under the source commit time; the lag gauge and the delay histograms report the real delays', async () => {
    const id = 900_003;
    const sample = async (region: string, re: RegExp) => Number(re.exec(await (await fetch(`${cluster.agents.get(region)!.httpUrl}/metrics`)).text())?.[1] ?? 0);
    const captureCount = /^regionsync_capture_delay_seconds_count(?:\{[^}]*\})? (\S+)$/m;
    const applyCount = /^regionsync_apply_delay_seconds_count\{[^}]*source="us-east-1"[^}]*\} (\S+)$/m;
    const applySum = /^regionsync_apply_delay_seconds_sum\{[^}]*source="us-east-1"[^}]*\} (\S+)$/m;
    const [capturedBefore, appliedBefore, applySumBefore] = [await sample(US, captureCount), await sample(EU, applyCount), await sample(EU, applySum)];
    await cluster.query(US, `insert into products values ($1, 'timed', 1, 1, now())`, [id]);
    const [{ t: sourceCommit }] = await cluster.query<{ t: string }>(US, 'select pg_xact_commit_timestamp(xmin)::text as t from products where id = $1', [id]);
    await waitUntil('product in eu-west-1', async () => (await cluster.query(EU, 'select 1 from products where id = $1', [id])).length === 1, 30_000);
    // The origin session carries the source's commit time into the local commit record.
    const [{ t: appliedCommit }] = await cluster.query<{ t: string }>(EU, 'select pg_xact_commit_timestamp(xmin)::text as t from products where id = $1', [id]);
    expect(appliedCommit).toBe(sourceCommit);
    const metrics = await (await fetch(`${cluster.agents.get(EU)!.httpUrl}/metrics`)).text();
    const lag = Number(/^regionsync_lag_seconds\{[^}]*source="us-east-1"[^}]*\} (\S+)$/m.exec(metrics)?.[1]);
    // Capture, bus and apply take milliseconds: a lag of exactly 0 means the commit time is wrong.
    expect(lag).toBeGreaterThan(0);
    expect(lag).toBeLessThan(30);
    // Each end timed the transaction: commit to confirmed by the bus at the source, commit
    // to applied at the destination (observed right after the apply commit).
    await waitUntil('capture delay observed in us-east-1', async () => (await sample(US, captureCount)) > capturedBefore, 10_000);
    expect(await sample(EU, applyCount)).toBeGreaterThan(appliedBefore);
    const applyDelay = (await sample(EU, applySum)) - applySumBefore;
    expect(applyDelay).toBeGreaterThan(0);
    expect(applyDelay).toBeLessThan(30);
  });

  it('acknowledges the slot only after the bus confirmed: a cut link holds the slot back, restore delivers', async () => {
    await cutLink(US, 'nats');
    const id = 900_001;
    // The insert position (past this row's WAL), not the write position: that one may still
    // equal the end of the previous commit, which the slot has rightly confirmed.
    const [{ lsn }] = await cluster.query<{ lsn: string }>(US, `insert into products values ($1, 'cut', 1, 5, now()) returning pg_current_wal_insert_lsn()::text as lsn`, [id]);
    // Observe for a bounded window while cut: the confirmed position must stay behind the write.
    const until = Date.now() + 5000;
    while (Date.now() < until) {
      expect(compareLsn(await confirmedFlush(US), lsn!)).toBeLessThan(0);
      await new Promise((r) => setTimeout(r, 250));
    }
    const health = (await (await fetch(`${cluster.agents.get(US)!.httpUrl}/healthz`)).json()) as { mode: string };
    expect(health.mode).toBe('autonomous');
    await restoreLink(US, 'nats');
    await waitUntil('row delivered after the link returned', async () => (await cluster.query(EU, 'select 1 from products where id = $1', [id])).length === 1, 90_000);
    await waitUntil('slot acknowledged past the write', async () => compareLsn(await confirmedFlush(US), lsn!) >= 0, 30_000);
  });

  it('drains on SIGTERM (exit 0) and loses nothing across the restart; logs hold keys, never values', async () => {
    const canary = `canary-${Date.now()}@pii.example`;
    for (let i = 0; i < 50; i++) await cluster.query(US, `insert into users values (gen_random_uuid(), $1, $2, 'Canary Person', now())`, [US, `${i}-${canary}`]);
    const code = await cluster.stopAgent(US, 'SIGTERM');
    expect(code).toBe(0);
    await cluster.startAgent(US);
    await waitUntil('all 50 canary users in eu-west-1', async () => (await cluster.query<{ n: number }>(EU, 'select count(*)::int as n from users where email like $1', [`%${canary}`]))[0]!.n === 50, 60_000);
    for (const r of [US, EU]) expect(readFileSync(cluster.agents.get(r)!.logPath, 'utf8')).not.toContain(canary);
  });

  it('stamps inserts per statement, a re-inserted key per row above it, and both regions agree on every version', async () => {
    type V = { pk: string; hlc: string; region: string; deleted: boolean; counters: Record<string, Record<string, { total: string }>> | null };
    const versionsOf = (region: string) =>
      cluster.query<V>(region, `select pk, hlc, region, deleted, counters from regionsync.row_versions where table_name = 'public.products' and pk in ('910001','910002','910003','910004','910010') order by pk`);
    // A row written while no trigger fires has no version: an INSERT ... ON CONFLICT DO NOTHING
    // of its key writes nothing, so it must not leave a version behind either.
    await withDb(US, async (db) => {
      await db.query(`set session_replication_role = replica`);
      await db.query(`insert into products values (910010, 'before regionsync', 1, 1, now())`);
    });
    await withDb(US, async (db) => {
      await db.query('begin');
      await db.query(`insert into products (id, name, price_cents, stock, updated_at) values (910001, 'a', 1, 5, now()), (910002, 'b', 1, 0, now()), (910003, 'c', 1, 7, now())`);
      await db.query(`delete from products where id = 910003`);
      // 910003 now has a tombstone: stamped per row, above this statement's stamp (910004's).
      await db.query(`insert into products (id, name, price_cents, stock, updated_at) values (910004, 'd', 1, 2, now()), (910003, 'c again', 1, 3, now())`);
      await db.query(`insert into products values (910010, 'ignored', 1, 1, now()) on conflict do nothing`);
      await db.query('commit');
    });
    const us = await versionsOf(US);
    expect(us.map((v) => v.pk)).toEqual(['910001', '910002', '910003', '910004']);
    const [a, b, c, d] = us as [V, V, V, V];
    expect(a.hlc).toBe(b.hlc);
    expect(d.hlc > a.hlc).toBe(true);
    expect(c.hlc > d.hlc).toBe(true);
    expect(c.deleted).toBe(false);
    expect(a.counters?.stock?.[US]?.total).toBe('5');
    expect(b.counters?.stock?.[US]?.total).toBe('0');
    await waitUntil('the four products in eu-west-1', async () => (await cluster.query(EU, 'select 1 from products where id between 910001 and 910004')).length === 4, 30_000);
    // Capture sent each row with the version recorded at home (the statement's stamp for new keys).
    // (910010 did travel, unstamped, when it was written: eu-west-1 holds a version for it.)
    const eu = (await versionsOf(EU)).filter((v) => v.pk !== '910010');
    expect(eu.map((v) => [v.pk, v.hlc, v.region, v.deleted])).toEqual(us.map((v) => [v.pk, v.hlc, v.region, v.deleted]));
    expect(eu.map((v) => v.counters)).toEqual(us.map((v) => v.counters));
    for (const r of [US, EU]) {
      expect(await cluster.query(r, `select id::int, name, stock::int from products where id between 910001 and 910004 order by id`)).toEqual([
        { id: 910001, name: 'a', stock: 5 }, { id: 910002, name: 'b', stock: 0 }, { id: 910003, name: 'c again', stock: 3 }, { id: 910004, name: 'd', stock: 2 },
      ]);
    }
  });

  it('a counter row deleted and inserted again holds the inserted value in every region, then counts on from it', async () => {
    const stockIn = async (region: string) => (await cluster.query<{ s: string }>(region, 'select stock::text as s from products where id = 910020'))[0]?.s;
    await cluster.query(US, `insert into products values (910020, 'counted', 1, 10, now())`);
    await waitUntil('product in eu-west-1', async () => (await stockIn(EU)) === '10', 30_000);
    // Both regions contribute before the delete: us-east-1 10, eu-west-1 4.
    await cluster.query(EU, `update products set stock = stock + 4 where id = 910020`);
    await waitUntil('eu-west-1 increment in us-east-1', async () => (await stockIn(US)) === '14', 30_000);
    await cluster.query(US, `delete from products where id = 910020`);
    await waitUntil('delete in eu-west-1', async () => (await stockIn(EU)) === undefined, 30_000);
    await cluster.query(US, `insert into products values (910020, 'counted again', 1, 6, now())`);
    await waitUntil('re-insert in eu-west-1', async () => (await stockIn(EU)) !== undefined, 30_000);
    expect(await stockIn(EU)).toBe('6');
    expect(await stockIn(US)).toBe('6');
    await cluster.query(EU, `update products set stock = stock + 1 where id = 910020`);
    await waitUntil('increment after the re-insert in us-east-1', async () => (await stockIn(US)) === '7', 30_000);
    expect(await stockIn(EU)).toBe('7');
  });

  it('a deleted counter row inserted again by a statement larger than a chunk: its version, sent after the rows, reaches every region', async () => {
    const rowIn = async (region: string, id: number) => (await cluster.query<{ name: string; stock: string }>(region, 'select name, stock::text as stock from products where id = $1', [id]))[0];
    const versionIn = async (region: string, id: number) => (await cluster.query<{ hlc: string; region: string; deleted: boolean; counters: unknown }>(region, `select hlc, region, deleted, counters from regionsync.row_versions where table_name = 'public.products' and pk = $1`, [String(id)]))[0];
    await cluster.query(US, `insert into products values (911000, 'first life', 1, 10, now())`);
    await waitUntil('product in eu-west-1', async () => (await rowIn(EU, 911000))?.stock === '10', 30_000);
    await cluster.query(EU, `update products set stock = stock + 4 where id = 911000`);
    await waitUntil('eu-west-1 increment in us-east-1', async () => (await rowIn(US, 911000))?.stock === '14', 30_000);
    await cluster.query(US, `delete from products where id = 911000`);
    await waitUntil('delete in eu-west-1', async () => (await rowIn(EU, 911000)) === undefined, 30_000);
    // The re-inserted key is the statement's first row: it leaves in the first 500-row chunk,
    // and its version (above the tombstone, with us-east-1's contribution 6 - 4) after all 1,200.
    await cluster.query(US, `insert into products (id, name, price_cents, stock, updated_at) select g, 'bulk ' || g, 1, case when g = 911000 then 6 else 1 end, now() from generate_series(911000, 912199) g order by g`);
    await waitUntil('the 1,200 rows in eu-west-1', async () => (await cluster.query<{ n: number }>(EU, 'select count(*)::int as n from products where id between 911000 and 912199'))[0]!.n === 1200, 30_000);
    await waitUntil('the late version in eu-west-1', async () => (await versionIn(EU, 911000))?.hlc === (await versionIn(US, 911000))?.hlc, 30_000);
    const [us, eu, sibling] = [await versionIn(US, 911000), await versionIn(EU, 911000), await versionIn(US, 911001)];
    expect(eu).toEqual(us);
    expect(us!.hlc > sibling!.hlc).toBe(true);
    expect(us!.deleted).toBe(false);
    for (const r of [US, EU]) expect(await rowIn(r, 911000)).toEqual({ name: 'bulk 911000', stock: '6' });
    await cluster.query(EU, `update products set stock = stock + 1 where id = 911000`);
    await waitUntil('increment after the re-insert in us-east-1', async () => (await rowIn(US, 911000))?.stock === '7', 30_000);
  });

  it("a user's AFTER ROW trigger that changes the rows an INSERT wrote: the changed rows travel, with one version everywhere", async () => {
    const rowsIn = (region: string) => cluster.query<{ id: number; name: string; stock: number }>(region, 'select id::int, name, stock::int from products where id between 913000 and 913002 order by id');
    const versionsIn = (region: string) => cluster.query(region, `select pk, hlc, region, deleted, counters from regionsync.row_versions where table_name = 'public.products' and pk in ('913000', '913001', '913002') order by pk`);
    await cluster.query(US, `insert into products values (913001, 'tombstoned', 1, 3, now())`);
    await cluster.query(US, `delete from products where id = 913001`);
    await cluster.query(US, `create or replace function public.test_touch() returns trigger language plpgsql as $$ begin update products set name = NEW.name || ' (touched)', stock = NEW.stock + 1 where id = NEW.id; return null; end $$`);
    await cluster.query(US, `create trigger test_touch after insert on products for each row when (NEW.id in (913000, 913001)) execute function public.test_touch()`);
    try {
      await cluster.query(US, `insert into products values (913000, 'new', 1, 5, now()), (913001, 'again', 1, 7, now()), (913002, 'untouched', 1, 2, now())`);
    } finally {
      await cluster.query(US, 'drop trigger test_touch on products');
    }
    const expected = [{ id: 913000, name: 'new (touched)', stock: 6 }, { id: 913001, name: 'again (touched)', stock: 8 }, { id: 913002, name: 'untouched', stock: 2 }];
    expect(await rowsIn(US)).toEqual(expected);
    await waitUntil('the three rows in eu-west-1', async () => JSON.stringify(await rowsIn(EU)) === JSON.stringify(expected), 30_000);
    await waitUntil('the same versions in eu-west-1', async () => JSON.stringify(await versionsIn(EU)) === JSON.stringify(await versionsIn(US)), 30_000);
  });

  it('an UPDATE of the primary key moves the row in every region: the old key is deleted there too', async () => {
    const rowsIn = (region: string) => cluster.query<{ id: number; stock: number }>(region, 'select id::int, stock::int from products where id in (915000, 915001) order by id');
    const versionsIn = (region: string) => cluster.query(region, `select pk, hlc, region, deleted, counters from regionsync.row_versions where table_name = 'public.products' and pk in ('915000', '915001') order by pk`);
    // A name large enough to be stored out of line (TOAST): the update leaves it unchanged,
    // and pgoutput sends it as such; the other regions have no row under the new key to keep it from.
    await cluster.query(US, `insert into products values (915000, (select string_agg(md5(g::text), '') from generate_series(1, 400) g), 1, 4, now())`);
    await waitUntil('the row in eu-west-1', async () => (await rowsIn(EU)).length === 1, 30_000);
    await cluster.query(US, 'update products set id = 915001 where id = 915000');
    await waitUntil('the row under its new key only, in eu-west-1', async () => JSON.stringify(await rowsIn(EU)) === JSON.stringify([{ id: 915001, stock: 4 }]), 30_000);
    expect(await rowsIn(US)).toEqual([{ id: 915001, stock: 4 }]);
    const nameIn = async (region: string) => (await cluster.query<{ h: string | null }>(region, 'select md5(name) as h from products where id = 915001'))[0]?.h;
    expect(await nameIn(EU)).toBe(await nameIn(US));
    expect(await nameIn(US)).not.toBeNull();
    type V = { pk: string; hlc: string; region: string; deleted: boolean; counters: Record<string, Record<string, { total: string }>> | null };
    const summary = async (region: string) => ((await versionsIn(region)) as V[]).map((v) => [v.pk, v.hlc, v.region, v.deleted, v.counters?.stock?.[US]?.total]);
    expect(await summary(US)).toEqual([['915000', expect.any(String), US, true, '4'], ['915001', expect.any(String), US, false, '4']]);
    expect(await summary(EU)).toEqual(await summary(US));
    await cluster.query(EU, 'update products set stock = stock + 1 where id = 915001');
    await waitUntil('the increment under the new key in us-east-1', async () => JSON.stringify(await rowsIn(US)) === JSON.stringify([{ id: 915001, stock: 5 }]), 30_000);
  });

  it('applies an insert of a key this region already holds by merging, and keeps its values out of the PostgreSQL server log', async () => {
    const canary = `pg-log-canary-${Date.now()}`;
    const pgLog = join(resolveLayout().stateDir, 'logs', `postgres-${EU}.log`);
    const fallbacks = async () => Number(/^regionsync_apply_new_key_fallbacks_total\{[^}]*source="us-east-1"[^}]*\} (\d+)/m.exec(await (await fetch(`${cluster.agents.get(EU)!.httpUrl}/metrics`)).text())?.[1] ?? 0);
    const before = await fallbacks();
    const logFrom = statSync(pgLog).size;
    // A row eu-west-1 holds without a version and never sent (written under a regionsync
    // origin: no stamp, no capture): us-east-1's insert of the same key is sent without
    // loading first, fails on the key, and is applied again the usual way (load, merge:
    // the unversioned row loses).
    await withDb(EU, async (db) => {
      const origin = originName('test-local-only', 'agent_ops');
      await db.query(`select pg_replication_origin_create($1) where not exists (select 1 from pg_replication_origin where roname = $1)`, [origin]);
      await db.query(`select pg_replication_origin_session_setup($1)`, [origin]);
      await db.query(`insert into products values (910030, 'held in eu-west-1 only', 1, 1, now())`);
    });
    await cluster.query(US, `insert into products values (910030, $1, 1, 4, now())`, [canary]);
    await waitUntil('the insert merged in eu-west-1', async () => (await cluster.query<{ name: string }>(EU, 'select name from products where id = 910030'))[0]?.name === canary, 30_000);
    expect((await cluster.query<{ stock: number }>(EU, 'select stock::int from products where id = 910030'))[0]?.stock).toBe(4);
    expect(await fallbacks()).toBe(before + 1);
    // The failed statement carried the row as literals: PostgreSQL logged the error, not the
    // statement's text (nor a DETAIL, which can quote a row).
    const log = readFileSync(pgLog).subarray(logFrom).toString('utf8');
    expect(log.includes('duplicate key value violates unique constraint "products_pkey"'), 'the failed insert is in the server log').toBe(true);
    expect(log.includes(canary), 'a row value is in the server log').toBe(false);
  });

  it('applies each source transaction once: origin progress makes redelivery a no-op', async () => {
    // Every write apply makes to this row in eu-west-1 is counted by a trigger: a change
    // applied twice would show up as an extra write.
    await cluster.query(EU, `create table if not exists apply_writes (id bigint primary key, n int not null)`);
    await cluster.query(EU, `create or replace function count_apply_write() returns trigger language plpgsql as $$ begin
      insert into apply_writes values (NEW.id, 1) on conflict (id) do update set n = apply_writes.n + 1; return NEW; end $$`);
    // ENABLE ALWAYS: apply runs as a replica session, where ordinary triggers do not fire.
    await cluster.query(EU, `drop trigger if exists count_apply_write on products; create trigger count_apply_write after insert or update on products for each row when (NEW.id = 900002) execute function count_apply_write(); alter table products enable always trigger count_apply_write`);
    const [{ n: before }] = await cluster.query<{ n: number }>(EU, `select count(*)::int as n from regionsync.row_versions`);
    await cluster.query(US, `insert into products values (900002, 'once', 1, 10, now())`);
    await waitUntil('product in eu-west-1', async () => (await cluster.query(EU, 'select 1 from products where id = 900002')).length === 1, 30_000);
    for (let i = 0; i < 5; i++) await cluster.query(US, `update products set stock = stock + 1 where id = 900002`);
    // Kill the receiver without draining: whatever it had not acknowledged is redelivered.
    await cluster.stopAgent(EU, 'SIGKILL');
    await cluster.startAgent(EU);
    await waitUntil('counter converged', async () => (await cluster.query<{ s: string }>(EU, 'select stock::text as s from products where id = 900002'))[0]?.s === '15', 60_000);
    const [{ n: after }] = await cluster.query<{ n: number }>(EU, `select count(*)::int as n from regionsync.row_versions`);
    expect(after).toBeGreaterThan(before);
    expect((await cluster.query<{ s: string }>(US, 'select stock::text as s from products where id = 900002'))[0]?.s).toBe('15');
    // One insert and five updates committed in us-east-1: exactly six writes applied here.
    expect((await cluster.query<{ n: number }>(EU, 'select n from apply_writes where id = 900002'))[0]?.n).toBe(6);
  });

  // Apply sends values as literals (one round trip carries several statements), so the
  // quoting must be exact for any text, whatever the server's string settings, including
  // text that contains or ends like the dollar-quote tag.
  it('apply literals carry any text intact, whatever standard_conforming_strings says', async () => {
    const nasty = ["it's", 'back\\slash', "\\'; drop table users; --", 'new\nline\ttab', '\\x41\\u0041', 'ünï😀', '', '"quoted"', "''", '$rs$', 'x$rs', '$', '$$', '$1'];
    await withDb(US, async (db) => {
      for (const scs of ['on', 'off']) {
        await db.query(`set standard_conforming_strings = ${scs}`);
        const tx = new TxPipeline(db);
        tx.queue('begin');
        const [texts, json, arr] = await tx.run(
          `select array[${nasty.map(sqlText).join(',')}]::text[] as v`,
          `select ${sqlJson({ nasty })} as v`,
          `select ${sqlTextArray(nasty)} as v`,
        );
        await tx.run('commit');
        expect(texts!.rows[0].v, `text literals, standard_conforming_strings=${scs}`).toEqual(nasty);
        expect(json!.rows[0].v, `jsonb literal, standard_conforming_strings=${scs}`).toEqual({ nasty });
        expect(arr!.rows[0].v, `text[] literal, standard_conforming_strings=${scs}`).toEqual(nasty);
      }
    });
  });

  // The planner guesses 100 rows for a set-returning function; on a table of this size it
  // then hashed the whole table for every applied transaction instead of probing the key.
  it('apply reads and deletes a batch through the primary key, never a scan of the table (custom and generic plans)', async () => {
    await withDb(US, async (db) => {
      await db.query('create table if not exists public.plan_probe (id bigint primary key, v text)');
      await db.query(`insert into public.plan_probe select g, 'v' || g from generate_series(1, 20000) g on conflict do nothing`);
      await db.query('analyze public.plan_probe');
      const sql = new TableSql(await loadTableInfo(db, 'public.plan_probe'));
      const keys = [{ id: '5' }, { id: '17' }];
      const statements = [sql.loadStatements(keys, ['5', '17'])[0], sql.deleteStatement(keys)!];
      for (const mode of ['force_custom_plan', 'force_generic_plan']) {
        await db.query(`set plan_cache_mode = ${mode}`);
        for (const [i, st] of statements.entries()) {
          await db.query(`prepare plan_probe_${i} as ${st.sql}`);
          const plan = JSON.stringify((await db.query(`explain (format json) execute plan_probe_${i}(${st.args.join(', ')})`)).rows[0]);
          await db.query(`deallocate plan_probe_${i}`);
          expect(plan, `${mode}: ${st.sql.slice(0, 30)}`).toContain('"Index Name":"plan_probe_pkey"');
          expect(plan, `${mode}: ${st.sql.slice(0, 30)}`).not.toContain('Seq Scan');
        }
      }
      await db.query('reset plan_cache_mode');
      const [load] = await new TxPipeline(db).run(sql.loadStatements(keys, ['5', '17'])[0]);
      expect(load!.rows.map((r: { v: string }) => r.v).sort()).toEqual(['v17', 'v5']);
    });
  });

  it('the pipeline prepares a statement once per connection, maps results past PREPAREs, and recovers from a failed batch', async () => {
    const db = new pg.Client({ connectionString: cluster.dbUrl(US) });
    await db.connect();
    const count = async () => (await db.query<{ n: number }>('select count(*)::int as n from pg_prepared_statements')).rows[0]!.n;
    try {
      const twice = { sql: 'select $1::int * 2 as v', args: ['21'] };
      const plus = (n: number) => ({ sql: 'select $1::int + 1 as v', args: [String(n)] });
      for (let i = 0; i < 3; i++) {
        const tx = new TxPipeline(db);
        tx.queue(plus(0));
        const [a, b, c] = await tx.run(twice, 'select 7 as v', plus(i));
        expect([a!.rows[0].v, b!.rows[0].v, c!.rows[0].v]).toEqual([42, 7, i + 1]);
      }
      expect(await count()).toBe(2);
      // A batch that fails after its PREPARE: the next use prepares again and works.
      const bad = new TxPipeline(db);
      await expect(bad.run({ sql: 'select $1::int / 2 as v', args: ['8'] }, 'select 1/0')).rejects.toThrow(/division by zero/);
      const [r] = await new TxPipeline(db).run({ sql: 'select $1::int / 2 as v', args: ['8'] });
      expect(r!.rows[0].v).toBe(4);
      // Two statements in one entry would shift every later result onto the wrong statement.
      const multi = new TxPipeline(db);
      multi.queue('begin; select 1');
      await expect(multi.run('select 2 as v')).rejects.toThrow(/2 statements sent but 3 results came back/);
      expect((await db.query<{ s: string }>('select pg_current_xact_id_if_assigned() is null and now() = statement_timestamp() as s')).rows[0]!.s).toBe(true);
    } finally {
      await db.end();
    }
  });

  it('a role that may not change the server log settings: apply warns once, naming the grant, and applies on', async () => {
    const src = 'ap-south-1';
    await cluster.query(EU, 'select pg_replication_origin_create($1::text) where not exists (select 1 from pg_replication_origin where roname = $1::text)', [originName(src, 'agent_ops')]);
    // A role with what apply needs and nothing more (not superuser, no GRANT SET ON PARAMETER).
    await cluster.query(EU, `do $$ begin if not exists (select 1 from pg_roles where rolname = 'rs_apply_limited') then create role rs_apply_limited login password 'rs_apply_limited'; end if; end $$`);
    await cluster.query(EU, `grant usage on schema public, regionsync to rs_apply_limited;
      grant select, insert, update, delete on all tables in schema public, regionsync to rs_apply_limited;
      grant usage on all sequences in schema public, regionsync to rs_apply_limited;
      grant execute on function pg_replication_origin_session_setup(text), pg_replication_origin_progress(text, boolean), pg_replication_origin_xact_setup(pg_lsn, timestamptz), pg_replication_origin_session_is_setup() to rs_apply_limited`);
    const url = new URL(cluster.dbUrl(EU));
    url.username = 'rs_apply_limited';
    url.password = 'rs_apply_limited';
    const lines: string[] = [];
    const applier = new Applier({ region: EU, connectionString: url.toString(), tables: [{ name: 'public.users', strategy: 'row-lww', counterColumns: [] }], log: pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) }) });
    const hlc = '001795000000000.000000';
    const insert = (lsn: string, id: string): ChangeBody => ({
      sourceRegion: src, destination: EU, commitLsn: lsn, commitTime: '2026-11-24T00:00:00.000Z', xid: 1, hlc, vclock: { [src]: hlc }, chunk: { index: 0, last: true },
      rows: [{ table: 'public.users', op: 'insert', key: { id }, values: { id, home_region: 'eu-west-1', email: 'limited@example.test', full_name: 'applied by a limited role', updated_at: '2026-11-24 00:00:00+00' }, version: { hlc, region: src } }],
    });
    const ids = ['00000000-0000-4000-8000-00000001a001', '00000000-0000-4000-8000-00000001a002'];
    try {
      await withDb(EU, (db) => applier.init(db));
      expect(await applier.applyBatch([insert('0/1A001', ids[0]!)])).toBe(1);
      expect(await applier.applyBatch([insert('0/1A002', ids[1]!)])).toBe(1);
    } finally {
      await applier.close();
    }
    expect((await cluster.query<{ n: number }>(EU, 'select count(*)::int as n from users where id = any($1::uuid[])', [ids]))[0]?.n).toBe(2);
    const warnings = lines.map((l) => JSON.parse(l) as { msg: string; fix?: string }).filter((l) => l.msg.includes('PostgreSQL server log'));
    expect(warnings).toHaveLength(1);
    // Nor may it run apply as a replica session: one warning, naming that grant too.
    const replica = lines.map((l) => JSON.parse(l) as { msg: string; fix?: string }).filter((l) => l.msg.includes('replica session'));
    expect(replica).toHaveLength(1);
    expect(replica[0]!.fix).toContain('GRANT SET ON PARAMETER session_replication_role');
    expect(warnings[0]!.fix).toContain('GRANT SET ON PARAMETER log_min_error_statement, log_error_verbosity');
  });

  // With an erasure policy the apply transaction begins with a LOCK. It used to travel in
  // the same pipeline entry as BEGIN, which shifted the loads' results by one: the merge saw
  // no local row and no version, and an older remote change overwrote a newer local write.
  it('apply under the erasure share lock merges against local state: an older remote change loses to a newer local write', async () => {
    const src = 'ap-south-1';
    const id = '00000000-0000-4000-8000-0000000e1a5e';
    await cluster.query(EU, 'select pg_replication_origin_create($1::text) where not exists (select 1 from pg_replication_origin where roname = $1::text)', [originName(src, 'agent_ops')]);
    await cluster.query(EU, `insert into users (id, home_region, email, full_name, updated_at) values ($1, 'eu-west-1', 'local@example.test', 'local write', now())`, [id]);
    const old = '000000000000001.000000';
    const body = (lsn: string, fullName: string): ChangeBody => ({
      sourceRegion: src, destination: EU, commitLsn: lsn, commitTime: '2020-01-01T00:00:00.000Z', xid: 1, hlc: old, vclock: { [src]: old }, chunk: { index: 0, last: true },
      rows: [{ table: 'public.users', op: 'update', key: { id }, values: { id, home_region: 'eu-west-1', email: 'remote@example.test', full_name: fullName, updated_at: '2020-01-01 00:00:00+00' }, version: { hlc: old, region: src } }],
    });
    const applier = new Applier({ region: EU, connectionString: cluster.dbUrl(EU), tables: [{ name: 'public.users', strategy: 'row-lww', counterColumns: [] }], log: pino({ level: 'silent' }), shareLockTables: ['public.users'] });
    try {
      await withDb(EU, (db) => applier.init(db));
      // A single-row transaction (may run on cached generic plans) and one of 41 rows
      // (above SMALL_TRANSACTION_ROWS: planned at every execution).
      const many = (lsn: string, fullName: string, n: number): ChangeBody => ({ ...body(lsn, fullName), rows: Array.from({ length: n }, () => body(lsn, fullName).rows[0]!) });
      expect(await applier.applyBatch([body('0/10', 'older remote')])).toBe(1);
      expect(await applier.applyBatch([body('0/20', 'older remote 2'), many('0/30', 'older remote 3', 40)])).toBe(2);
    } finally {
      await applier.close();
    }
    const [row] = await cluster.query<{ full_name: string }>(EU, 'select full_name from users where id = $1', [id]);
    expect(row?.full_name).toBe('local write');
    const [v] = await cluster.query<{ region: string }>(EU, `select region from regionsync.row_versions where table_name = 'public.users' and pk = $1`, [id]);
    expect(v?.region).toBe(EU);
  });

  it('a group of messages that keeps losing to local writes on one hot key is split: the messages not touching it apply at once', async () => {
    const src = 'sa-east-1';
    const cold = '00000000-0000-4000-8000-00000000c01d';
    const hot = '00000000-0000-4000-8000-000000000407';
    await cluster.query(EU, 'select pg_replication_origin_create($1::text) where not exists (select 1 from pg_replication_origin where roname = $1::text)', [originName(src, 'agent_ops')]);
    for (const id of [cold, hot]) await cluster.query(EU, `insert into users (id, home_region, email, full_name, updated_at) values ($1, 'eu-west-1', 'local@example.test', 'local', now())`, [id]);
    // Newer than the rows' local inserts, so the remote update of the cold row wins. Only
    // slightly ahead: apply moves the region's clock to it, and a lead over the other
    // region's agents (beyond their skew limit) would hold up the tests after this one.
    const ahead = formatHlc({ wallMs: Date.now() + 1_000, logical: 0 });
    const body = (lsn: string, id: string): ChangeBody => ({
      sourceRegion: src, destination: EU, commitLsn: lsn, commitTime: new Date().toISOString(), xid: 1, hlc: ahead, vclock: { [src]: ahead }, chunk: { index: 0, last: true },
      rows: [{ table: 'public.users', op: 'update', key: { id }, values: { id, home_region: 'eu-west-1', email: 'remote@example.test', full_name: 'remote', updated_at: '2030-01-01 00:00:00+00' }, version: { hlc: ahead, region: src } }],
    });
    const registry = new Registry();
    const applier = new Applier({ region: EU, connectionString: cluster.dbUrl(EU), tables: [{ name: 'public.users', strategy: 'row-lww', counterColumns: [] }], log: pino({ level: 'silent' }), metrics: createReplicationMetrics(registry) });
    // A local writer updating the hot row back to back: every apply transaction that writes
    // it meets an update committed after its snapshot (serialization failure).
    let stop = false;
    let localUpdates = 0;
    const writer = withDb(EU, async (db) => {
      while (!stop) {
        await db.query(`update users set updated_at = now() where id = $1`, [hot]);
        localUpdates += 1;
      }
    });
    let first: number | Error;
    try {
      await withDb(EU, (db) => applier.init(db));
      await waitUntil('the local writer is busy', async () => localUpdates > 20, 10_000, 10);
      first = await applier.applyBatch([body('0/1000', cold), body('0/2000', hot)]).catch((err: Error) => err);
    } finally {
      stop = true;
      await writer;
    }
    try {
      // Whatever became of the hot message, the cold one is applied: it no longer waits behind it.
      expect((await cluster.query<{ full_name: string }>(EU, 'select full_name from users where id = $1', [cold]))[0]?.full_name).toBe('remote');
      const retries = Number(/^regionsync_apply_retries_total\{[^}]*\} (\d+)/m.exec(await registry.metrics())?.[1] ?? 0);
      expect(retries, 'the group lost to the local writer before it was split').toBeGreaterThanOrEqual(3);
      if (first instanceof Error) expect(errorCode(first)).toBe('RS_REPLICATION_APPLY');
      // The writer gone, the redelivered group applies what is left, once. (Whether the hot
      // row then shows the remote update is the merge's business: once the cold message
      // committed, the local clock passed its HLC, and later local writes are newer.)
      expect(await applier.applyBatch([body('0/1000', cold), body('0/2000', hot)])).toBe(first instanceof Error ? 1 : 0);
      const recorded = await cluster.query<{ lsn: string }>(EU, `select commit_lsn::text as lsn from regionsync.applied_messages where source = $1 order by commit_lsn`, [src]);
      expect(recorded.map((r) => r.lsn)).toEqual(['0/1000', '0/2000']);
    } finally {
      await applier.close();
    }
  });

  // PostgreSQL switches a prepared statement to a generic plan after a few executions if
  // that looks no dearer (batches of many keys make it look cheap), and keeps it until the
  // next ANALYZE: made while the table was small, it scanned the whole table once per
  // applied transaction, however large the table grew.
  it('apply probes the primary key of a table that grew large after applying began', async () => {
    await withDb(EU, async (eu) => {
      try {
        await eu.query('set enable_seqscan = off'); // this test's own statements must not count
        await eu.query('alter table products set (autovacuum_enabled = false)'); // an ANALYZE would refresh a stale plan
        // Batches of 200 keys while the table is small. Updates: apply loads the local rows
        // and versions for them (inserts of new keys go without loading).
        await cluster.query(US, `insert into products select g, 'batch', 1, 1, now() from generate_series(950000, 951999) g`);
        await waitUntil('the batch rows in eu-west-1', async () => (await eu.query('select 1 from products where id = 951999')).rowCount === 1, 30_000);
        for (let b = 0; b < 10; b++) {
          const first = 950000 + b * 200;
          await cluster.query(US, `update products set name = $3 where id between $1::int and $2::int`, [first, first + 199, `batch ${b}`]);
          await waitUntil(`batch ${b} in eu-west-1`, async () => (await eu.query('select name from products where id = $1', [first + 199])).rows[0]?.name === `batch ${b}`, 30_000);
        }
        // The table grows locally (no apply involved) to 20,000 more rows.
        await eu.query(`insert into products select g, 'bulk', 1, 1, now() from generate_series(920000, 939999) g`);
        const scans = async () => (await eu.query<{ seq: string; idx: string; tup: string }>(`select seq_scan::text as seq, coalesce(idx_scan, 0)::text as idx, seq_tup_read::text as tup from pg_stat_user_tables where relid = 'public.products'::regclass`)).rows[0]!;
        const before = await scans();
        const n = 20;
        for (let id = 950000; id < 950000 + n; id++) {
          await cluster.query(US, `update products set name = 'probe' where id = $1`, [id]);
          // One source transaction at a time, so each is its own apply transaction (its own load).
          await waitUntil(`product ${id} updated in eu-west-1`, async () => (await eu.query('select name from products where id = $1', [id])).rows[0]?.name === 'probe', 30_000);
        }
        // Statistics reach the shared counters a little later: wait until every load is counted.
        await waitUntil('apply scans counted', async () => {
          const now = await scans();
          return Number(now.seq) - Number(before.seq) + Number(now.idx) - Number(before.idx) >= 2 * n;
        }, 30_000);
        // Counted in rows read: one scan now reads over 20,000; statistics of scans of the small
        // table, flushed late, add at most a few thousand.
        expect(Number((await scans()).tup) - Number(before.tup)).toBeLessThan(20000);
      } finally {
        await eu.query('alter table products reset (autovacuum_enabled)').catch(() => undefined);
      }
    });
  });

  // A day of applied_messages records at production rates is tens of millions of rows; the
  // clean-up runs on the apply session every 5,000 messages, so a scan of the table there
  // stalled every apply behind it for as long as the scan took.
  it('the applied_messages clean-up reaches expired records through its index, in bounded runs, and keeps recent ones', async () => {
    await withDb(EU, async (eu) => {
      const src = 'gc-probe';
      await eu.query(`delete from regionsync.applied_messages where source = $1`, [src]);
      await eu.query(`insert into regionsync.applied_messages (source, commit_lsn, chunk, applied_at)
        select $1, ('0/' || to_hex(g))::pg_lsn, 0, now() - interval '25 hours' - g * interval '1 millisecond' from generate_series(1, 30000) g`, [src]);
      await eu.query(`insert into regionsync.applied_messages (source, commit_lsn, chunk) select $1, ('1/' || to_hex(g))::pg_lsn, 0 from generate_series(1, 5) g`, [src]);
      await eu.query('analyze regionsync.applied_messages');
      const plan = JSON.stringify((await eu.query(`explain (format json) ${APPLIED_MESSAGES_GC_SQL}`)).rows[0]);
      expect(plan).toContain('"Index Name":"applied_messages_applied_at"');
      expect(plan).not.toContain('Seq Scan');
      const runs: number[] = [];
      for (let n = -1; n !== 0; ) runs.push((n = (await eu.query(APPLIED_MESSAGES_GC_SQL)).rowCount ?? 0));
      expect(runs).toEqual([10000, 10000, 10000, 0]);
      const left = await eu.query<{ n: string }>(`select count(*)::text as n from regionsync.applied_messages where source = $1`, [src]);
      expect(left.rows[0]!.n).toBe('5');
      await eu.query(`delete from regionsync.applied_messages where source = $1`, [src]);
    });
  });

  it('a table with a generated column: inserts, updates and a re-insert over a tombstone replicate, each region computes the column itself, and dropping a column keeps writes working', async () => {
    const rowsIn = (region: string) => cluster.query<{ id: number; stock: number; doubled: number }>(region, 'select id::int, stock::int, doubled::int from products where id between 914000 and 914002 order by id');
    for (const r of [US, EU]) await cluster.query(r, 'alter table products add column doubled bigint generated always as (stock * 2) stored, add column note text');
    try {
      // Started afresh, the agents read the table's columns with the generated one.
      for (const r of [US, EU]) await cluster.restartAgent(r);
      await cluster.query(US, `insert into products (id, name, price_cents, stock, updated_at) values (914000, 'g', 1, 5, now()), (914001, 'g', 1, 6, now())`);
      await cluster.query(US, 'delete from products where id = 914001');
      await cluster.query(US, `update products set stock = stock + 1 where id = 914000`);
      // A statement larger than a chunk, whose first row goes over 914001's tombstone: its
      // late version travels with the values from the trigger, not from the WAL.
      await cluster.query(US, `insert into products (id, name, price_cents, stock, updated_at) select g, 'g', 1, 7, now() from generate_series(914001, 914600) g order by g`);
      await waitUntil('the bulk insert in eu-west-1', async () => (await cluster.query(EU, 'select 1 from products where id between 914001 and 914600')).length === 600, 30_000);
      await cluster.query(EU, `update products set stock = stock + 10 where id = 914002`);
      const expected = [{ id: 914000, stock: 6, doubled: 12 }, { id: 914001, stock: 7, doubled: 14 }, { id: 914002, stock: 17, doubled: 34 }];
      await waitUntil('the same rows in both regions', async () => JSON.stringify(await rowsIn(EU)) === JSON.stringify(expected) && JSON.stringify(await rowsIn(US)) === JSON.stringify(expected), 30_000);
    } finally {
      for (const r of [US, EU]) await cluster.query(r, 'alter table products drop column if exists doubled, drop column if exists note');
    }
    // The triggers were generated while `note` existed: an UPDATE of the key and a re-insert
    // over a tombstone (the paths that send whole rows) must still work without it.
    await cluster.query(US, 'update products set id = 914700 where id = 914600');
    await cluster.query(US, 'delete from products where id = 914599');
    await cluster.query(US, `insert into products (id, name, price_cents, stock, updated_at) values (914599, 'again', 1, 1, now())`);
    await waitUntil('both writes in eu-west-1', async () => (await cluster.query<{ id: number }>(EU, 'select id::int from products where id in (914599, 914600, 914700) order by id')).map((r) => r.id).join() === '914599,914700', 30_000);
    for (const r of [US, EU]) await cluster.restartAgent(r);
  });

  it('a counter row from before regionsync (written unstamped) counts on from its value in every region: the first counted update neither drops nor doubles it', async () => {
    // Keys far from the ranges the other tests write (which reach 951999).
    const p = 3_000_000_000 + 2 * Math.floor(Math.random() * 1e6);
    const q = p + 1;
    // Unstamped writes, as rows that predate the triggers or a writer regionsync does not
    // stamp: P written in eu-west-1, Q in us-east-1; each still replicates as a plain row.
    await withDb(EU, async (db) => {
      await db.query('set session_replication_role = replica');
      await db.query(`insert into products (id, name, price_cents, stock, updated_at) values (${p}, 'p', 1, 1, now())`);
    });
    await withDb(US, async (db) => {
      await db.query('set session_replication_role = replica');
      await db.query(`insert into products (id, name, price_cents, stock, updated_at) values (${q}, 'q', 1, 1, now())`);
    });
    const stocks = async (region: string) => (await cluster.query<{ s: string }>(region, `select string_agg(stock::text, ',' order by id) as s from products where id in (${p}, ${q})`))[0]?.s;
    await waitUntil('both plain rows in both regions', async () => (await stocks(US)) === '1,1' && (await stocks(EU)) === '1,1', 30_000);
    // us-east-1 counts on: Q through its stamp trigger (no version there), P over the base apply kept.
    await cluster.query(US, `update products set stock = stock + 8 where id in (${p}, ${q})`);
    await waitUntil('9 and 9 in both regions', async () => (await stocks(US)) === '9,9' && (await stocks(EU)) === '9,9', 30_000);
    // What each region stores adds up to what it shows (a full copy sends the contributions).
    const consistent = async (region: string) =>
      (await cluster.query<{ n: number }>(region, `select count(*)::int as n from products t join regionsync.row_versions v on v.table_name = 'public.products' and v.pk = t.id::text
        where t.id in (${p}, ${q}) and t.stock = (select sum((e.value ->> 'total')::numeric) from jsonb_each(v.counters -> 'stock') e)`))[0]?.n;
    for (const r of [US, EU]) expect(await consistent(r), `${r}: contributions of both rows add up to their stock`).toBe(2);
    // eu-west-1 counts on: P over the value it held with no version (apply took it as the base).
    await cluster.query(EU, `update products set stock = stock + 2 where id in (${p}, ${q})`);
    await waitUntil('11 and 11 in both regions', async () => (await stocks(US)) === '11,11' && (await stocks(EU)) === '11,11', 30_000).catch(async (err: unknown) => {
      throw new Error(`${(err as Error).message}: us-east-1 ${await stocks(US)}, eu-west-1 ${await stocks(EU)}`);
    });
    for (const r of [US, EU]) expect(await consistent(r), `${r}: contributions of both rows add up to their stock`).toBe(2);
  });

  it("the agent's sessions terminated again and again (a DBA's pg_terminate_backend, a pooler or failover cutting them) while rows are written: the agent keeps running and replicates on", async () => {
    // pg emits 'error' on a client whose server ended its session, even between queries; a
    // client without a listener then crashed the agent (the CI's db-restart flake).
    const base = 3_100_000_000 + 1000 * Math.floor(Math.random() * 1e5);
    const killers = await Promise.all([US, EU].map(async (r) => {
      const c = new pg.Client({ connectionString: cluster.dbUrl(r), application_name: 'test-terminator' });
      await c.connect();
      return c;
    }));
    const writer = new pg.Client({ connectionString: cluster.dbUrl(US), application_name: 'test-writer' });
    await writer.connect();
    let terminated = 0;
    try {
      const until = Date.now() + 8000;
      let i = 0;
      while (Date.now() < until) {
        for (const k of killers) {
          const r = await k.query<{ n: number }>(`select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
            where datname = current_database() and pid <> pg_backend_pid() and (application_name like 'regionsync%' or backend_type = 'walsender')`);
          terminated += r.rows[0]!.n;
        }
        if (i < 100) await writer.query(`insert into products (id, name, price_cents, stock, updated_at) values (${base + i++}, 'cut', 1, 1, now())`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await Promise.all([...killers, writer].map((c) => c.end()));
    }
    for (const r of [US, EU]) expect(cluster.agents.get(r)!.process.exitCode, `${r} agent still running (see ${cluster.agents.get(r)!.logPath})`).toBeNull();
    expect(terminated, 'sessions terminated').toBeGreaterThan(20);
    console.error(`[agent int] ${terminated} agent sessions terminated in 8 s; both agents still running`);
    await cluster.query(EU, `insert into products (id, name, price_cents, stock, updated_at) values (${base + 100}, 'after', 1, 1, now())`);
    const count = async (region: string) => (await cluster.query<{ n: number }>(region, `select count(*)::int as n from products where id between ${base} and ${base + 100}`))[0]!.n;
    await waitUntil('all 101 rows in both regions', async () => (await count(US)) === 101 && (await count(EU)) === 101, 90_000);
    for (const r of [US, EU]) expect(cluster.agents.get(r)!.process.exitCode, `${r} agent still running`).toBeNull();
  });
});
