// Identifiers regionsync creates in every regional database, derived in one place.

/** Fully qualified, unquoted table name as used in config and on the wire: `schema.table`. */
export type TableName = string;

export const META_SCHEMA = 'regionsync';
export const PUBLICATION = 'regionsync_pub';
export const ORIGIN_PREFIX = 'regionsync_';

const snake = (region: string) => region.replace(/-/g, '_');

// Slots and origins are cluster-wide objects, so their names carry the database name:
// several regionsync databases (tests, benchmarks) can share one PostgreSQL cluster.
const ns = (database: string) => database.replace(/\W/g, '_').toLowerCase();
export const slotName = (region: string, database: string) => `regionsync_${ns(database)}_${snake(region)}`.slice(0, 63);
export const originName = (sourceRegion: string, database: string) => `${ORIGIN_PREFIX}${ns(database)}_${snake(sourceRegion)}`.slice(0, 63);
export const databaseOf = (connectionString: string) => decodeURIComponent(new URL(connectionString).pathname.replace(/^\//, '')) || 'postgres';
export const isRegionsyncOrigin = (name: string | null | undefined) => typeof name === 'string' && name.startsWith(ORIGIN_PREFIX);

export function splitTable(name: TableName): { schema: string; table: string } {
  const i = name.indexOf('.');
  return i < 0 ? { schema: 'public', table: name } : { schema: name.slice(0, i), table: name.slice(i + 1) };
}

export function qualify(name: TableName): TableName {
  // Already qualified (every name on the wire is): itself, without splitting (once per applied row).
  return name.includes('.') ? name : `public.${name}`;
}

export function quoteIdent(id: string): string {
  return `"${id.replace(/"/g, '""')}"`;
}

export function quoteTable(name: TableName): string {
  const { schema, table } = splitTable(name);
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

export function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** Primary keys travel as one text value: the key columns' text forms joined by U+001F. */
export const PK_SEPARATOR = '\u001f';
export const pkText = (keyColumns: readonly string[], values: Record<string, string | null>) => keyColumns.map((c) => values[c] ?? '').join(PK_SEPARATOR);
