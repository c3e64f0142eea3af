import type pg from 'pg';
import { RegionsyncError } from '@regionsync/protocol';
import { qualify, splitTable, type TableName } from './sql-names.js';

export interface ColumnInfo {
  name: string;
  type: string; // format_type(), e.g. "bigint", "timestamp with time zone"
}

export interface TableInfo {
  name: TableName;
  columns: ColumnInfo[];
  keyColumns: string[];
  replicaIdentity: 'default' | 'nothing' | 'full' | 'index';
  /** GENERATED ALWAYS AS IDENTITY columns: apply inserts them with OVERRIDING SYSTEM VALUE. */
  identityAlways?: string[];
}

const IDENTITY: Record<string, TableInfo['replicaIdentity']> = { d: 'default', n: 'nothing', f: 'full', i: 'index' };

/** Reads a table's columns and primary key from the catalog; throws a clear error if it has none. */
export async function loadTableInfo(db: pg.ClientBase, name: TableName): Promise<TableInfo> {
  const { schema, table } = splitTable(name);
  const rel = await db.query<{ oid: number; relreplident: string }>(
    `select c.oid, c.relreplident from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2 and c.relkind in ('r','p')`,
    [schema, table],
  );
  const r = rel.rows[0];
  if (!r) throw new RegionsyncError('RS_REPLICATION_PREREQUISITE', `table ${qualify(name)} does not exist in the local database; create it (same schema in every region) or remove it from tables`);
  // Generated columns are left out: pgoutput does not send them, each region computes its
  // own, and writing one fails (apply loaded them with the row and upserted them back).
  const cols = await db.query<ColumnInfo & { identity: string }>(
    `select attname as name, format_type(atttypid, atttypmod) as type, attidentity as identity from pg_attribute where attrelid = $1 and attnum > 0 and not attisdropped and attgenerated = '' order by attnum`,
    [r.oid],
  );
  const identityAlways = cols.rows.filter((c) => c.identity === 'a').map((c) => c.name);
  const pk = await db.query<{ name: string }>(
    `select a.attname as name from pg_index i join unnest(i.indkey) with ordinality k(attnum, ord) on true
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
      where i.indrelid = $1 and i.indisprimary order by k.ord`,
    [r.oid],
  );
  if (pk.rows.length === 0) {
    throw new RegionsyncError('RS_REPLICATION_PREREQUISITE', `table ${qualify(name)} has no primary key; regionsync identifies rows by primary key (add one: ALTER TABLE ${qualify(name)} ADD PRIMARY KEY (...))`);
  }
  return { name: qualify(name), columns: cols.rows.map((c) => ({ name: c.name, type: c.type })), ...(identityAlways.length > 0 ? { identityAlways } : {}), keyColumns: pk.rows.map((p) => p.name), replicaIdentity: IDENTITY[r.relreplident] ?? 'default' };
}

/** A stable fingerprint of a table's shape, used to detect schema drift between regions. */
export function schemaFingerprint(info: TableInfo): string {
  return info.columns.map((c) => `${c.name}:${c.type}`).join(',') + `|pk:${info.keyColumns.join(',')}`;
}
