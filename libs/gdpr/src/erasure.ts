// Erasure and export of one data subject in one region's database (the bus side, a request
// reaching every region and the acknowledgements, lives with the agent and the CLI).
//
// Semantics (docs in README): an erased subject stays erased. The region deletes every row
// whose policy subject column equals the subject, leaves a tombstone version for each, and
// records the subject in `regionsync.erased_subjects`. From then on
//  - a replicated change for that subject (for instance written by a region that was cut
//    off and had not seen the request yet) is refused at apply and audited;
//  - a local write for it is refused by a guard trigger, so no region re-creates what the
//    others refuse and all regions converge on "gone".
// The deletes run under a regionsync replication origin: capture does not forward them
// (every region erases for itself, from the request it received).
import type pg from 'pg';
import { RegionsyncError } from '@regionsync/protocol';
import { appendAuditInTx } from './audit-store.js';
import type { Policy } from './policy-schema.js';

const META = 'regionsync';

export const ERASURE_DDL = `
create schema if not exists ${META};
create table if not exists ${META}.erased_subjects (
  table_name text not null,
  subject text not null,
  request_id text not null,
  erased_at timestamptz not null default now(),
  primary key (table_name, subject)
);
create table if not exists ${META}.erasures (
  request_id text primary key,
  received_at timestamptz not null default now(),
  completed_at timestamptz,
  rows_erased int not null default 0
);
`;

export interface ErasureTable {
  table: string;
  subjectColumn: string;
}

const quoteIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const quoteLiteral = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const quoteTable = (t: string): string => {
  const [schema, name] = t.includes('.') ? (t.split('.', 2) as [string, string]) : ['public', t];
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
};
const qualified = (t: string): string => (t.includes('.') ? t : `public.${t}`);

/** Replicated tables the policy gives a subject column, in a stable (lock) order. */
export function erasureTables(policy: Policy, replicated: readonly string[]): ErasureTable[] {
  const wanted = new Set(replicated.map(qualified));
  const out: ErasureTable[] = [];
  for (const [table, tp] of Object.entries(policy.tables)) {
    if (tp.subjectColumn !== undefined && wanted.has(qualified(table))) out.push({ table: qualified(table), subjectColumn: tp.subjectColumn });
  }
  return out.sort((a, b) => a.table.localeCompare(b.table));
}

/** Refuses local writes of an erased subject (apply filters its own rows, see ErasedSubjects). */
export function guardTriggerDdl(t: ErasureTable): string {
  const fn = `${META}.${quoteIdent(`erased_guard_${t.table.replace(/\W/g, '_')}`)}`;
  return `
create or replace function ${fn}() returns trigger language plpgsql as $$
declare v_request text;
begin
  if pg_replication_origin_session_is_setup() then return NEW; end if;
  select request_id into v_request from ${META}.erased_subjects where table_name = ${quoteLiteral(t.table)} and subject = NEW.${quoteIdent(t.subjectColumn)}::text;
  if found then
    raise exception 'regionsync: write refused, the data subject of this row was erased (request %)', v_request
      using errcode = 'P0001', hint = 'An erased subject stays erased in every region; store the data under a new subject id.';
  end if;
  return NEW;
end $$;
drop trigger if exists aa_regionsync_erased on ${quoteTable(t.table)};
create trigger aa_regionsync_erased before insert or update on ${quoteTable(t.table)} for each row execute function ${fn}();
`;
}

/** Creates the erasure tables and the guard triggers, idempotently. */
export async function setupErasure(db: pg.ClientBase, tables: readonly ErasureTable[]): Promise<void> {
  await db.query(ERASURE_DDL);
  for (const t of tables) await db.query(guardTriggerDdl(t));
}

/**
 * Erased subjects per table, kept in memory for the apply path's ingress check. Erasure
 * adds to it while holding the lock apply transactions take in share mode, so an apply
 * transaction either committed before the erasure (its rows are deleted by it) or checks
 * a set that already holds the subject.
 */
export class ErasedSubjects {
  private readonly byTable = new Map<string, Map<string, string>>();

  constructor(private readonly tables: readonly ErasureTable[]) {}

  /** The lock statement apply transactions run first (before their snapshot). */
  static readonly LOCK_TABLE = `${META}.erased_subjects`;

  async load(db: pg.ClientBase): Promise<number> {
    const r = await db.query<{ table_name: string; subject: string; request_id: string }>(`select table_name, subject, request_id from ${META}.erased_subjects`);
    for (const row of r.rows) this.add(row.table_name, row.subject, row.request_id);
    return r.rowCount ?? 0;
  }

  add(table: string, subject: string, requestId: string): void {
    let m = this.byTable.get(table);
    if (!m) this.byTable.set(table, (m = new Map()));
    m.set(subject, requestId);
  }

  remove(table: string, subject: string): void {
    this.byTable.get(table)?.delete(subject);
  }

  /** The request that erased the subject of `row` in `table`, if any. */
  requestFor(table: string, row: Record<string, string | null>): string | undefined {
    const t = this.tables.find((x) => x.table === qualified(table));
    if (!t) return undefined;
    const value = row[t.subjectColumn];
    return value === null || value === undefined ? undefined : this.byTable.get(t.table)?.get(value);
  }

  get size(): number {
    let n = 0;
    for (const m of this.byTable.values()) n += m.size;
    return n;
  }
}

async function keyColumns(db: pg.ClientBase, table: string): Promise<string[]> {
  const r = await db.query<{ c: string }>(
    `select a.attname as c from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
      where i.indrelid = $1::regclass and i.indisprimary order by array_position(i.indkey::int2[], a.attnum)`,
    [quoteTable(table)],
  );
  if (r.rows.length === 0) throw new RegionsyncError('RS_GDPR_ERASURE', `${table} has no primary key; erasure needs one to leave tombstones`, { retryable: false });
  return r.rows.map((x) => x.c);
}

const pkExpr = (keys: string[]): string => keys.map((k) => `coalesce(t.${quoteIdent(k)}::text, '')`).join(' || chr(31) || ');

export interface EraseRequest {
  requestId: string;
  subject: string;
  /** Restrict to these tables (default: every table with a subject column). */
  tables?: readonly string[];
}

export interface EraseOptions {
  region: string;
  /** A regionsync replication origin (capture drops its transactions: no echo). */
  origin: string;
  tables: readonly ErasureTable[];
  erased: ErasedSubjects;
}

export interface EraseResult {
  rowsErased: number;
  perTable: Record<string, number>;
  /** The request had already been carried out here (a redelivery): nothing was done again. */
  already: boolean;
}

/**
 * Carries out one erasure request in one region, in one transaction: erased-subject
 * records, deletes, tombstones and audit entries commit together or not at all.
 */
export async function eraseSubject(db: pg.ClientBase, req: EraseRequest, o: EraseOptions): Promise<EraseResult> {
  const only = req.tables ? new Set(req.tables.map(qualified)) : undefined;
  const tables = o.tables.filter((t) => !only || only.has(t.table));
  const keys = new Map<string, string[]>();
  for (const t of tables) keys.set(t.table, await keyColumns(db, t.table));
  const o1 = await db.query('select 1 from pg_replication_origin where roname = $1', [o.origin]);
  if (o1.rowCount === 0) await db.query('select pg_replication_origin_create($1) where not exists (select 1 from pg_replication_origin where roname = $1)', [o.origin]);
  const added: ErasureTable[] = [];
  await db.query('begin');
  try {
    const done = await db.query<{ rows_erased: number }>(`select rows_erased from ${META}.erasures where request_id = $1 and completed_at is not null`, [req.requestId]);
    if (done.rows[0]) {
      await db.query('commit');
      return { rowsErased: done.rows[0].rows_erased, perTable: {}, already: true };
    }
    // Apply transactions hold this in share mode from their start: wait for those in
    // flight, keep new ones out until the subject is in the in-memory set (below).
    await db.query(`lock table ${ErasedSubjects.LOCK_TABLE} in exclusive mode`);
    // Local writers in flight finish first (their rows are then seen and deleted); new
    // ones wait and then meet the guard trigger.
    if (tables.length > 0) await db.query(`lock table ${tables.map((t) => quoteTable(t.table)).join(', ')} in share mode`);
    await db.query('select pg_replication_origin_session_setup($1)', [o.origin]);
    const at = Date.now();
    await db.query(`insert into ${META}.erasures (request_id) values ($1) on conflict do nothing`, [req.requestId]);
    const requestKey = { request_id: req.requestId };
    await appendAuditInTx(db, o.region, [{ at, kind: 'erasure-step', table: `${META}.erasures`, key: requestKey, reason: 'erasure-requested' }]);
    const perTable: Record<string, number> = {};
    let total = 0;
    for (const t of tables) {
      await db.query(`insert into ${META}.erased_subjects (table_name, subject, request_id) values ($1, $2, $3) on conflict do nothing`, [t.table, req.subject, req.requestId]);
      o.erased.add(t.table, req.subject, req.requestId);
      added.push(t);
      const res = await db.query<{ n: number }>(
        `with gone as (delete from ${quoteTable(t.table)} t where t.${quoteIdent(t.subjectColumn)}::text = $2::text returning ${pkExpr(keys.get(t.table)!)} as pk),
         clock as (select max_hlc from ${META}.node_clock where id = 1),
         stamped as (
           insert into ${META}.row_versions as rv (table_name, pk, hlc, region, deleted, deleted_at)
           select $1::text, g.pk, h.hlc, $3::text, true, jsonb_build_object('hlc', h.hlc, 'region', $3::text)
             from gone g
             left join ${META}.row_versions old on old.table_name = $1::text and old.pk = g.pk
             cross join clock c
             cross join lateral (select ${META}.next_hlc(greatest(coalesce(old.hlc, ''), coalesce(c.max_hlc, ''))) as hlc) h
           on conflict (table_name, pk) do update set hlc = excluded.hlc, region = excluded.region, deleted = true,
             deleted_at = excluded.deleted_at, column_versions = null, counters = null
           returning 1)
         select count(*)::int as n from stamped`,
        [t.table, req.subject, o.region],
      );
      const n = res.rows[0]?.n ?? 0;
      perTable[t.table] = n;
      total += n;
      await appendAuditInTx(db, o.region, [{ at: Date.now(), kind: 'erasure-step', table: t.table, key: { ...requestKey, rows: String(n) }, reason: 'erasure-rows-deleted' }]);
    }
    await db.query(`update ${META}.erasures set completed_at = now(), rows_erased = $2 where request_id = $1`, [req.requestId, total]);
    await appendAuditInTx(db, o.region, [{ at: Date.now(), kind: 'erasure-step', table: `${META}.erasures`, key: { ...requestKey, rows: String(total) }, reason: 'erasure-completed' }]);
    await db.query('commit');
    return { rowsErased: total, perTable, already: false };
  } catch (err) {
    await db.query('rollback').catch(() => undefined);
    // Entries that were there before this request stay (another request erased them).
    const kept = await db.query<{ table_name: string }>(`select table_name from ${META}.erased_subjects where subject = $1`, [req.subject]).catch(() => ({ rows: [] as { table_name: string }[] }));
    for (const t of added) if (!kept.rows.some((k) => k.table_name === t.table)) o.erased.remove(t.table, req.subject);
    throw new RegionsyncError('RS_GDPR_ERASURE', `erasure ${req.requestId} failed in ${o.region}`, { cause: err, retryable: true });
  } finally {
    await db.query('select pg_replication_origin_session_reset() where pg_replication_origin_session_is_setup()').catch(() => undefined);
  }
}

export interface SubjectExport {
  /** table → rows as stored here (values as JSON). */
  tables: Record<string, Record<string, unknown>[]>;
  /** table → primary key → columns this region holds redacted (the real values live in the home jurisdiction). */
  redacted: Record<string, Record<string, string[]>>;
}

/** Every row of the subject this region holds, per table. */
export async function exportSubject(db: pg.ClientBase, subject: string, tables: readonly ErasureTable[]): Promise<SubjectExport> {
  const out: SubjectExport = { tables: {}, redacted: {} };
  for (const t of tables) {
    const keys = await keyColumns(db, t.table);
    const r = await db.query<{ row: Record<string, unknown>; pk: string; redacted: string[] | null }>(
      `select row_to_json(t) as row, ${pkExpr(keys)} as pk, rv.redacted from ${quoteTable(t.table)} t
        left join ${META}.row_versions rv on rv.table_name = $1 and rv.pk = ${pkExpr(keys)}
        where t.${quoteIdent(t.subjectColumn)}::text = $2 order by 2`,
      [t.table, subject],
    );
    if (r.rows.length === 0) continue;
    out.tables[t.table] = r.rows.map((x) => x.row);
    for (const x of r.rows) if (x.redacted && x.redacted.length > 0) (out.redacted[t.table] ??= {})[x.pk] = x.redacted;
  }
  return out;
}
