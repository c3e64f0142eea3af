// Set-based SQL for one table: read local rows and versions for a batch of keys, write
// merged rows back. Every statement takes the batch as one jsonb array and lets
// PostgreSQL's own input functions parse the text values, so a 1,000-row transaction is
// a handful of statements, not thousands of round trips. The statements are Prepared (one
// text per table and column set, the batch as literal arguments), sent together through a
// TxPipeline.
import type pg from 'pg';
import type { RowState, Version } from '@regionsync/conflict';
import type { TableInfo } from './table-info.js';
import { META_SCHEMA, PK_SEPARATOR, quoteIdent, quoteLiteral, quoteTable } from './sql-names.js';
import { sqlJson, sqlTextArray, type Prepared } from './tx-pipeline.js';

type Values = Record<string, string | null>;
export interface StoredVersion {
  pk: string;
  hlc: string;
  region: string;
  deleted: boolean;
  column_versions: Record<string, Version> | null;
  counters: RowState['counters'] | null;
  deleted_at: Version | null;
  seen: Record<string, string> | null;
  redacted: string[] | null;
}

const isJson = (type: string) => type === 'json' || type === 'jsonb';

export class TableSql {
  readonly pkExpr: string;
  private readonly selectList: string;
  private readonly joinOn: string;
  private readonly jsonColumns: Set<string>;

  constructor(readonly info: TableInfo) {
    this.pkExpr = info.keyColumns.map((k) => `coalesce(t.${quoteIdent(k)}::text, '')`).join(` || chr(31) || `);
    this.selectList = info.columns.map((c) => `t.${quoteIdent(c.name)}::text as ${quoteIdent(c.name)}`).join(', ');
    this.joinOn = info.keyColumns.map((k) => `t.${quoteIdent(k)} = d.${quoteIdent(k)}`).join(' and ');
    this.jsonColumns = new Set(info.columns.filter((c) => isJson(c.type)).map((c) => c.name));
    this.keySet = `(select * from jsonb_populate_recordset(null::${quoteTable(info.name)}, $1::jsonb) limit $2::int)`;
    this.loadRowsSql = `select ${this.selectList}, ${this.pkExpr} as __pk from ${quoteTable(info.name)} t join ${this.keySet} d on ${this.joinOn}`;
    this.loadVersionsSql = `select pk, hlc, region, deleted, column_versions, counters, deleted_at, seen, redacted from ${META_SCHEMA}.row_versions where table_name = ${quoteLiteral(info.name)} and pk = any($1::text[])`;
    this.deleteSql = `delete from ${quoteTable(info.name)} t using ${this.keySet} d where ${this.joinOn}`;
  }

  private readonly loadRowsSql: string;
  private readonly loadVersionsSql: string;
  private readonly deleteSql: string;
  private readonly upsertSql = new Map<string, string>();

  pkOf(key: Values): string {
    return this.info.keyColumns.map((k) => key[k] ?? '').join(PK_SEPARATOR);
  }

  /** json/jsonb travel as text; jsonb_populate_recordset needs the JSON value itself. */
  private toRecord(values: Values): Record<string, unknown> {
    if (this.jsonColumns.size === 0) return values;
    const out: Record<string, unknown> = { ...values };
    for (const c of this.jsonColumns) if (typeof out[c] === 'string') out[c] = JSON.parse(out[c] as string);
    return out;
  }

  /**
   * The batch's keys ($1, a jsonb array of $2 records) as a relation to join. The planner
   * guesses 100 rows for any set-returning function, so on a table of up to some tens of
   * thousands of rows it hashed the whole table (a sequential scan per applied transaction:
   * 1.8 ms on 8,000 rows for one key). Behind a LIMIT it probes the primary key instead,
   * in custom and generic plans alike.
   */
  private readonly keySet: string;

  /** The two reads of a batch: local rows and their versions (results go to parseLoad). */
  loadStatements(keys: Values[], pks: string[]): [Prepared, Prepared] {
    return [
      { sql: this.loadRowsSql, args: [sqlJson(keys.map((k) => this.toRecord(k))), String(keys.length)] },
      { sql: this.loadVersionsSql, args: [sqlTextArray(pks)] },
    ];
  }

  parseLoad(rows: pg.QueryResult, versions: pg.QueryResult): { current: Map<string, Values>; versions: Map<string, StoredVersion> } {
    const current = new Map<string, Values>();
    for (const r of rows.rows as (Values & { __pk: string })[]) {
      const { __pk, ...values } = r;
      current.set(__pk, values);
    }
    return { current, versions: new Map((versions.rows as StoredVersion[]).map((r) => [r.pk, r])) };
  }

  /**
   * Upserts of rows, one statement per column set (columns missing from a row are left
   * untouched); plain inserts with `absent` (keys known not to exist).
   */
  upsertStatements(rows: Values[], absent = false): Prepared[] {
    const groups = new Map<string, Values[]>();
    for (const r of rows) {
      const sig = Object.keys(r).sort().join(',');
      const g = groups.get(sig);
      if (g) g.push(r);
      else groups.set(sig, [r]);
    }
    return [...groups].map(([sig, group]) => ({ sql: this.upsertSqlFor(sig, absent), args: [sqlJson(group.map((r) => this.toRecord(r)))] }));
  }

  private upsertSqlFor(sig: string, absent: boolean): string {
    const cacheKey = absent ? `+${sig}` : sig;
    let sql = this.upsertSql.get(cacheKey);
    if (sql === undefined) {
      const known = new Set(this.info.columns.map((c) => c.name));
      const cols = sig.split(',').filter((c) => known.has(c));
      const list = cols.map(quoteIdent).join(', ');
      // A GENERATED ALWAYS identity column takes the source's value on insert (OVERRIDING
      // SYSTEM VALUE) and cannot be set by an UPDATE at all: it is left out of the upsert's SET.
      const always = new Set(this.info.identityAlways ?? []);
      const updates = cols.filter((c) => !this.info.keyColumns.includes(c) && !always.has(c)).map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`);
      const conflict = updates.length > 0 ? `do update set ${updates.join(', ')}` : 'do nothing';
      sql = `insert into ${quoteTable(this.info.name)} (${list}) ${always.size > 0 ? 'overriding system value ' : ''}select ${list} from jsonb_populate_recordset(null::${quoteTable(this.info.name)}, $1::jsonb)`;
      if (!absent) sql += ` on conflict (${this.info.keyColumns.map(quoteIdent).join(', ')}) ${conflict}`;
      this.upsertSql.set(cacheKey, sql);
    }
    return sql;
  }

  deleteStatement(keys: Values[]): Prepared | undefined {
    if (keys.length === 0) return undefined;
    return { sql: this.deleteSql, args: [sqlJson(keys.map((k) => this.toRecord(k))), String(keys.length)] };
  }
}

const isPlainVersion = (v: StoredVersion) => v.column_versions === null && v.counters === null && v.deleted_at === null && v.redacted === null;

/**
 * Writes versions: upserts, or with `absent` plain inserts (keys known to have none). Plain
 * versions (HLC, region, deleted, seen: most of them) travel as arrays, the vector clocks
 * they saw once each: parsing a jsonb record per row cost the apply backend about 3 us a row.
 */
export function saveVersionsStatements(table: string, rows: StoredVersion[], absent = false): Prepared[] {
  const plain = rows.filter(isPlainVersion);
  const other = plain.length === rows.length ? [] : rows.filter((v) => !isPlainVersion(v));
  const out: Prepared[] = [];
  if (plain.length > 0) out.push(plainVersionsStatement(table, plain, absent));
  const rest = saveVersionsStatement(table, other, absent);
  if (rest) out.push(rest);
  return out;
}

function plainVersionsStatement(table: string, rows: StoredVersion[], absent: boolean): Prepared {
  const seenIndex = new Map<object, number>();
  const seens: object[] = [];
  const index = rows.map((v) => {
    if (!v.seen) return -1;
    let i = seenIndex.get(v.seen);
    if (i === undefined) {
      i = seens.length;
      seens.push(v.seen);
      seenIndex.set(v.seen, i);
    }
    return i;
  });
  const upsert = ` on conflict (table_name, pk) do update set hlc = excluded.hlc, region = excluded.region, deleted = excluded.deleted,
       column_versions = null, counters = null, deleted_at = null, seen = excluded.seen, redacted = null`;
  return {
    sql: `insert into ${META_SCHEMA}.row_versions as rv (table_name, pk, hlc, region, deleted, seen)
     select ${quoteLiteral(table)}, u.pk, u.hlc, u.region, u.deleted, case when u.s < 0 then null else $5::jsonb -> u.s end
     from unnest($1::text[], $2::text[], $3::text[], $4::bool[], $6::int[]) as u(pk, hlc, region, deleted, s)${absent ? '' : upsert}`,
    args: [
      sqlTextArray(rows.map((v) => v.pk)),
      sqlTextArray(rows.map((v) => v.hlc)),
      sqlTextArray(rows.map((v) => v.region)),
      `'{${rows.map((v) => (v.deleted ? 't' : 'f')).join(',')}}'::bool[]`,
      sqlJson(seens),
      `'{${index.join(',')}}'::int[]`,
    ],
  };
}

/** Versions as jsonb records: every field, for versions that carry more than plain ones. */
function saveVersionsStatement(table: string, rows: StoredVersion[], absent = false): Prepared | undefined {
  if (rows.length === 0) return undefined;
  const insert = `insert into ${META_SCHEMA}.row_versions as rv (table_name, pk, hlc, region, deleted, column_versions, counters, deleted_at, seen, redacted)
     select ${quoteLiteral(table)}, pk, hlc, region, deleted, column_versions, counters, deleted_at, seen, redacted from jsonb_populate_recordset(null::${META_SCHEMA}.row_versions, $1::jsonb)`;
  return {
    sql: absent
      ? insert
      : `${insert}
     on conflict (table_name, pk) do update set hlc = excluded.hlc, region = excluded.region, deleted = excluded.deleted,
       column_versions = excluded.column_versions, counters = excluded.counters, deleted_at = excluded.deleted_at, seen = excluded.seen, redacted = excluded.redacted`,
    args: [sqlJson(rows)],
  };
}
