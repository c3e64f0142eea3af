// Set-based SQL for one table: read local rows and versions for a batch of keys, write
// merged rows back. Every statement takes the batch as one jsonb array and lets
// PostgreSQL's own input functions parse the text values, so a 1,000-row transaction is
// a handful of statements, not thousands of round trips.
import type pg from 'pg';
import type { RowState, Version } from '@regionsync/conflict';
import type { TableInfo } from './table-info.js';
import { META_SCHEMA, PK_SEPARATOR, quoteIdent, quoteTable } from './sql-names.js';

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
  }

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

  async loadRows(db: pg.ClientBase, keys: Values[]): Promise<Map<string, Values>> {
    const res = await db.query<Values & { __pk: string }>(
      `select ${this.selectList}, ${this.pkExpr} as __pk from ${quoteTable(this.info.name)} t join jsonb_populate_recordset(null::${quoteTable(this.info.name)}, $1::jsonb) d on ${this.joinOn}`,
      [JSON.stringify(keys.map((k) => this.toRecord(k)))],
    );
    const out = new Map<string, Values>();
    for (const r of res.rows) {
      const { __pk, ...values } = r;
      out.set(__pk, values);
    }
    return out;
  }

  async loadVersions(db: pg.ClientBase, pks: string[]): Promise<Map<string, StoredVersion>> {
    const res = await db.query<StoredVersion>(`select pk, hlc, region, deleted, column_versions, counters, deleted_at, seen, redacted from ${META_SCHEMA}.row_versions where table_name = $1 and pk = any($2::text[])`, [this.info.name, pks]);
    return new Map(res.rows.map((r) => [r.pk, r]));
  }

  /** Upserts rows that share one column set (columns missing from a row are left untouched). */
  async upsert(db: pg.ClientBase, rows: Values[]): Promise<void> {
    const groups = new Map<string, Values[]>();
    for (const r of rows) {
      const sig = Object.keys(r).sort().join(',');
      const g = groups.get(sig);
      if (g) g.push(r);
      else groups.set(sig, [r]);
    }
    const known = new Set(this.info.columns.map((c) => c.name));
    for (const [sig, group] of groups) {
      const cols = sig.split(',').filter((c) => known.has(c));
      const list = cols.map(quoteIdent).join(', ');
      const updates = cols.filter((c) => !this.info.keyColumns.includes(c)).map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`);
      const conflict = updates.length > 0 ? `do update set ${updates.join(', ')}` : 'do nothing';
      await db.query(
        `insert into ${quoteTable(this.info.name)} (${list}) select ${list} from jsonb_populate_recordset(null::${quoteTable(this.info.name)}, $1::jsonb) on conflict (${this.info.keyColumns.map(quoteIdent).join(', ')}) ${conflict}`,
        [JSON.stringify(group.map((r) => this.toRecord(r)))],
      );
    }
  }

  async delete(db: pg.ClientBase, keys: Values[]): Promise<void> {
    if (keys.length === 0) return;
    await db.query(`delete from ${quoteTable(this.info.name)} t using jsonb_populate_recordset(null::${quoteTable(this.info.name)}, $1::jsonb) d where ${this.joinOn}`, [
      JSON.stringify(keys.map((k) => this.toRecord(k))),
    ]);
  }
}

export async function saveVersions(db: pg.ClientBase, table: string, rows: StoredVersion[]): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `insert into ${META_SCHEMA}.row_versions as rv (table_name, pk, hlc, region, deleted, column_versions, counters, deleted_at, seen, redacted)
     select $1, pk, hlc, region, deleted, column_versions, counters, deleted_at, seen, redacted from jsonb_populate_recordset(null::${META_SCHEMA}.row_versions, $2::jsonb)
     on conflict (table_name, pk) do update set hlc = excluded.hlc, region = excluded.region, deleted = excluded.deleted,
       column_versions = excluded.column_versions, counters = excluded.counters, deleted_at = excluded.deleted_at, seen = excluded.seen, redacted = excluded.redacted`,
    [table, JSON.stringify(rows)],
  );
}
