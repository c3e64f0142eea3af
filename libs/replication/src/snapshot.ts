// Initial copy for a region that joins or a table that is added to a running cluster.
// The agent that sees a destination or table for the first time publishes what it holds —
// rows with the versions they already have, tombstones, every region's counter
// contributions — as ordinary change messages through the egress policy. Capture is already
// publishing to the destination when the snapshot is read, so stream + snapshot leave no
// gap, and the merge rules make the overlap harmless (no duplicate effect).
import type pg from 'pg';
import type { Logger } from 'pino';
import { changesSubject, makeEnvelope, messageId, type ChangeBody, type RowChange } from '@regionsync/protocol';
import { BASE_CONTRIBUTION } from '@regionsync/conflict';
import type { ChangeCodec, ChangePublisher, EgressFilter } from './capture-options.js';
import { columnLayout } from './assembler.js';
import { loadTableInfo } from './table-info.js';
import { META_SCHEMA, PK_SEPARATOR, quoteIdent, quoteLiteral, quoteTable } from './sql-names.js';

/** Chunk indexes of snapshot messages start here so they never collide with a transaction's. */
export const SNAPSHOT_CHUNK_BASE = 1_000_000;
const HLC_ZERO = '000000000000000.000000';

export const MEMBERSHIP_DDL = `create table if not exists ${META_SCHEMA}.membership (kind text not null, name text not null, since timestamptz not null default now(), primary key (kind, name));`;

export interface SnapshotOptions {
  region: string;
  prefix?: string;
  publisher: ChangePublisher;
  codec: ChangeCodec;
  egress?: EgressFilter;
  log: Logger;
  chunkRows?: number;
}

/** Regions and tables this agent has not replicated to/from before (recorded after the copy). */
export async function newcomers(db: pg.ClientBase, regions: string[], tables: string[]): Promise<{ regions: string[]; tables: string[]; firstStart: boolean }> {
  await db.query(MEMBERSHIP_DDL);
  const r = await db.query<{ kind: string; name: string }>(`select kind, name from ${META_SCHEMA}.membership`);
  const known = new Set(r.rows.map((x) => `${x.kind}:${x.name}`));
  return { regions: regions.filter((x) => !known.has(`region:${x}`)), tables: tables.filter((x) => !known.has(`table:${x}`)), firstStart: r.rowCount === 0 };
}

export async function recordMembership(db: pg.ClientBase, regions: string[], tables: string[]): Promise<void> {
  await db.query(`insert into ${META_SCHEMA}.membership (kind, name) select 'region', unnest($1::text[]) on conflict do nothing`, [regions]);
  await db.query(`insert into ${META_SCHEMA}.membership (kind, name) select 'table', unnest($1::text[]) on conflict do nothing`, [tables]);
}

export interface InitialCopyOptions extends SnapshotOptions {
  /** Every other region this agent sends to. */
  destinations: string[];
  /** Every replicated table, schema-qualified. */
  tables: string[];
  /** Awaited after the copy's publishes, before membership is recorded (e.g. audit flush). */
  ackBarrier?: () => Promise<void>;
}

/**
 * Sends a snapshot to every destination not yet recorded as a member and of every table not
 * yet recorded, then records them. A crash half-way leaves them unrecorded, so the next
 * start sends the copy again (the merge rules make the repeat harmless).
 */
export async function initialCopy(db: pg.ClientBase, o: InitialCopyOptions): Promise<{ regions: string[]; tables: string[]; rows: number }> {
  const fresh = await newcomers(db, o.destinations, o.tables);
  const knownRegions = o.destinations.filter((r) => !fresh.regions.includes(r));
  let rows = await publishSnapshot(db, o, o.tables, fresh.regions);
  rows += await publishSnapshot(db, o, fresh.tables, knownRegions);
  await o.ackBarrier?.();
  await recordMembership(db, o.destinations, o.tables);
  return { regions: fresh.regions, tables: fresh.tables, rows };
}

/** Every destination will get a full copy again at the next initialCopy (the slot's WAL was lost). */
export async function forgetDestinations(db: pg.ClientBase, regions: string[]): Promise<void> {
  await db.query(MEMBERSHIP_DDL);
  await db.query(`delete from ${META_SCHEMA}.membership where kind = 'region' and name = any($1::text[])`, [regions]);
}

export interface VersionRow {
  hlc: string | null;
  region: string | null;
  deleted: boolean | null;
  counters: Record<string, Record<string, { total: string; version: { hlc: string; region: string } }>> | null;
  redacted?: string[] | null;
  __pk: string;
}

/** Publishes `tables` as held locally to `destinations`; returns rows sent per destination. */
export async function publishSnapshot(db: pg.ClientBase, o: SnapshotOptions, tables: string[], destinations: string[]): Promise<number> {
  if (tables.length === 0 || destinations.length === 0) return 0;
  let sent = 0;
  await db.query('begin isolation level repeatable read read only');
  try {
    const lsn = (await db.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
    let chunk = SNAPSHOT_CHUNK_BASE;
    const pending: Promise<unknown>[] = [];
    const flush = async (rows: RowChange[], schemas: Record<string, string>) => {
      for (const destination of destinations) {
        const out = o.egress ? rows.map((r) => o.egress!(r, destination)).filter((r): r is RowChange => r !== null) : rows;
        if (out.length === 0) continue;
        const index = chunk++;
        const hlc = out.reduce((m, r) => (r.version.hlc > m ? r.version.hlc : m), HLC_ZERO);
        const body: ChangeBody = { sourceRegion: o.region, destination, commitLsn: lsn, commitTime: new Date().toISOString(), xid: 0, hlc, vclock: {}, chunk: { index, last: false }, rows: out, schemas };
        const id = messageId(o.region, lsn, index);
        pending.push(o.publisher.publish(changesSubject(o.prefix, destination), o.codec.encode(makeEnvelope('change', o.region, body, id)), { id, key: o.region }));
        sent += out.length;
        if (pending.length >= 32) await Promise.all(pending.splice(0));
      }
    };
    for (const table of tables) {
      const info = await loadTableInfo(db, table);
      const layout = columnLayout({ columns: (await db.query<{ name: string; typeOid: number }>(
        `select attname as name, atttypid::int as "typeOid" from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped and attgenerated = '' order by attnum`, [quoteTable(table)])).rows });
      const pkExpr = info.keyColumns.map((k) => `coalesce(t.${quoteIdent(k)}::text, '')`).join(` || chr(31) || `);
      const cols = info.columns.map((c) => `t.${quoteIdent(c.name)}::text as ${quoteIdent(c.name)}`).join(', ');
      const liveSql = `select ${cols}, ${pkExpr} as __pk, rv.hlc, rv.region, rv.deleted, rv.counters, rv.redacted from ${quoteTable(table)} t
           left join ${META_SCHEMA}.row_versions rv on rv.table_name = ${quoteLiteral(info.name)} and rv.pk = ${pkExpr}`;
      const tombSql = `select pk, pk as __pk, hlc, region, deleted, counters from ${META_SCHEMA}.row_versions where table_name = ${quoteLiteral(info.name)} and deleted`;
      let liveCount = 0;
      let tombCount = 0;
      let rows: RowChange[] = [];
      const push = async (r: RowChange) => {
        rows.push(r);
        if (rows.length >= (o.chunkRows ?? 500)) {
          await flush(rows, { [info.name]: layout });
          rows = [];
        }
      };
      for await (const row of cursorRows<Record<string, string | null> & VersionRow>(db, liveSql)) {
        liveCount += 1;
        for (const change of liveRowChanges(info.name, info.keyColumns, row, o.region)) await push(change);
      }
      for await (const t of cursorRows<VersionRow & { pk: string }>(db, tombSql)) {
        tombCount += 1;
        const parts = t.pk.split(PK_SEPARATOR);
        const key = Object.fromEntries(info.keyColumns.map((k, i) => [k, parts[i] ?? null]));
        // No contributions after a tombstone: a newer contribution version would revive the row.
        await push({ table: info.name, op: 'delete', key, version: { hlc: t.hlc!, region: t.region! } });
      }
      if (rows.length > 0) await flush(rows, { [info.name]: layout });
      o.log.info({ table: info.name, destinations, live: liveCount, tombstones: tombCount }, 'initial copy published');
    }
    await Promise.all(pending);
    await db.query('commit');
  } catch (err) {
    await db.query('rollback').catch(() => undefined);
    throw err;
  }
  return sent;
}

/**
 * Rows of `sql` a thousand at a time through a cursor of the open transaction: a region's
 * whole table (a join, or the copy after a lost slot) must not sit in the agent's memory.
 */
async function* cursorRows<T extends pg.QueryResultRow>(db: pg.ClientBase, sql: string): AsyncGenerator<T> {
  const name = `regionsync_snapshot_${cursorSeq++}`;
  await db.query(`declare ${name} no scroll cursor for ${sql}`);
  try {
    for (;;) {
      const r = await db.query<T>(`fetch 1000 from ${name}`);
      if (r.rows.length === 0) return;
      yield* r.rows;
    }
  } finally {
    await db.query(`close ${name}`).catch(() => undefined);
  }
}
let cursorSeq = 0;

/**
 * A live row of the copy as the changes that rebuild it at the receiver: the row, then each
 * region's cumulative contribution as its own change, so the receiver's per-region merge sees
 * every one of them, exactly as if that region had sent it. A counter's base
 * (BASE_CONTRIBUTION) is not a region's: it travels as the column's plain value, which the
 * receiver takes as its base.
 */
export function liveRowChanges(table: string, keyColumns: string[], row: VersionRow & Record<string, unknown>, localRegion: string): RowChange[] {
  const { hlc, region, counters, __pk: _pk, deleted: _d, redacted, ...columns } = row;
  const values = columns as Record<string, string | null>; // every other field is a column, as text
  const key = Object.fromEntries(keyColumns.map((k) => [k, values[k] ?? null]));
  const version = { hlc: hlc ?? HLC_ZERO, region: region ?? localRegion };
  const held = new Set(redacted ?? []); // only ever received redacted here: never forwarded
  const rowValues: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(values)) {
    if (held.has(k)) continue;
    const byRegion = counters?.[k];
    if (!byRegion) rowValues[k] = v;
    else if (byRegion[BASE_CONTRIBUTION]) rowValues[k] = byRegion[BASE_CONTRIBUTION].total;
  }
  const out: RowChange[] = [{ table, op: 'insert', key, values: rowValues, ...(held.size > 0 ? { unchangedToast: [...held] } : {}), version }];
  for (const [column, byRegion] of Object.entries(counters ?? {})) {
    for (const [r, c] of Object.entries(byRegion)) {
      if (r !== BASE_CONTRIBUTION) out.push({ table, op: 'update', key, values: {}, counters: { [column]: { region: r, total: c.total } }, version: c.version });
    }
  }
  return out;
}
