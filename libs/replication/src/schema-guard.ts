// Detects a schema difference between a source and this region per table, and keeps it
// from being mis-applied: that table's incoming rows are parked (in the apply transaction,
// so nothing is lost or applied twice) while every other table keeps flowing. When this
// region's own layout of the table changes (the documented rollout: apply the same DDL
// in every region), the parked rows are replayed by column name and the table resumes.
import type pg from 'pg';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { ChangeBody, RowChange } from '@regionsync/protocol';
import { META_SCHEMA, quoteTable } from './sql-names.js';

export const SCHEMA_GUARD_DDL = `
create table if not exists ${META_SCHEMA}.parked_changes (
  id bigserial primary key,
  source text not null,
  table_name text not null,
  source_layout text not null,
  local_layout text not null,
  row jsonb not null,
  vclock jsonb not null,
  parked_at timestamptz not null default now()
);`;

interface Paused {
  since: number;
  localLayout: string;
}

export class SchemaGuard {
  private layouts = new Map<string, { layout: string; at: number }>();
  readonly paused = new Map<string, Paused>();
  private readonly gauge: Gauge<'table'> | undefined;

  constructor(private readonly log: Logger, registry?: Registry, private readonly onLayoutChange?: (table: string) => Promise<void>) {
    this.gauge = registry ? new Gauge({ name: 'regionsync_table_paused', help: 'Apply of this table is paused: its schema differs between regions (1) or not (0)', labelNames: ['table'], registers: [registry] }) : undefined;
  }

  async localLayout(db: pg.ClientBase, table: string, maxAgeMs = 5000): Promise<string> {
    const cached = this.layouts.get(table);
    if (cached && Date.now() - cached.at < maxAgeMs) return cached.layout;
    const r = await db.query<{ layout: string }>(
      `select coalesce(string_agg(attname || ':' || atttypid::int, ',' order by attnum), '') as layout from pg_attribute
        where attrelid = $1::regclass and attnum > 0 and not attisdropped and attgenerated = ''`,
      [quoteTable(table)],
    );
    const layout = r.rows[0]?.layout ?? '';
    if (cached && cached.layout !== layout) await this.onLayoutChange?.(table);
    this.layouts.set(table, { layout, at: Date.now() });
    return layout;
  }

  /** Restores paused tables from parked rows after a restart. */
  async init(db: pg.ClientBase): Promise<void> {
    await db.query(SCHEMA_GUARD_DDL);
    const r = await db.query<{ table_name: string; local_layout: string }>(`select distinct on (table_name) table_name, local_layout from ${META_SCHEMA}.parked_changes order by table_name, id`);
    for (const row of r.rows) this.pause(row.table_name, row.local_layout, 'restored after restart');
  }

  /** 'apply' when the rows can be applied as they are; 'park' when this table must wait. */
  async verdict(db: pg.ClientBase, table: string, body: ChangeBody): Promise<'apply' | 'park'> {
    if (this.paused.has(table)) return 'park';
    const incoming = body.schemas?.[table];
    if (incoming === undefined) return 'apply';
    if ((await this.localLayout(db, table)) === incoming) return 'apply';
    const fresh = await this.localLayout(db, table, 0);
    if (fresh === incoming) return 'apply';
    this.pause(table, fresh, `schema of ${table} differs: source ${body.sourceRegion} has [${incoming}], this region has [${fresh}]`);
    return 'park';
  }

  private pause(table: string, localLayout: string, reason: string): void {
    if (this.paused.has(table)) return;
    this.paused.set(table, { since: Date.now(), localLayout });
    this.gauge?.set({ table }, 1);
    // Column names and type ids only: never row values.
    this.log.error({ table, reason }, 'schema mismatch: apply of this table is paused and incoming rows are parked; apply the same DDL in every region (docs/schema-changes.md), apply resumes by itself');
  }

  async park(db: pg.ClientBase, body: ChangeBody, table: string, rows: RowChange[]): Promise<void> {
    const local = this.paused.get(table)?.localLayout ?? '';
    await db.query(
      `insert into ${META_SCHEMA}.parked_changes (source, table_name, source_layout, local_layout, row, vclock) select $1, $2, $3, $4, r, $5::jsonb from jsonb_array_elements($6::jsonb) r`,
      [body.sourceRegion, table, body.schemas?.[table] ?? '', local, JSON.stringify(body.vclock), JSON.stringify(rows)],
    );
  }

  /** Tables whose local layout changed since they were paused: ready to replay. */
  async resumable(db: pg.ClientBase): Promise<string[]> {
    const out: string[] = [];
    for (const [table, p] of this.paused) if ((await this.localLayout(db, table, 0)) !== p.localLayout) out.push(table);
    return out;
  }

  async parkedRows(db: pg.ClientBase, table: string): Promise<{ source: string; rows: RowChange[]; vclock: Record<string, string> }[]> {
    const r = await db.query<{ source: string; row: RowChange; vclock: Record<string, string> }>(`select source, row, vclock from ${META_SCHEMA}.parked_changes where table_name = $1 order by id`, [table]);
    const bySource = new Map<string, { source: string; rows: RowChange[]; vclock: Record<string, string> }>();
    for (const x of r.rows) {
      const g = bySource.get(x.source) ?? { source: x.source, rows: [], vclock: {} };
      g.rows.push(x.row);
      for (const [k, v] of Object.entries(x.vclock)) if (!g.vclock[k] || g.vclock[k]! < v) g.vclock[k] = v;
      bySource.set(x.source, g);
    }
    return [...bySource.values()];
  }

  async clearParked(db: pg.ClientBase, table: string, source: string): Promise<void> {
    await db.query(`delete from ${META_SCHEMA}.parked_changes where table_name = $1 and source = $2`, [table, source]);
  }

  resumed(table: string): void {
    this.paused.delete(table);
    this.gauge?.set({ table }, 0);
    this.log.info({ table }, 'schema matches again: parked rows replayed, apply of this table resumed');
  }
}
