// The demo schema used by the sandbox, the demo, benchmarks and e2e tests.
export const DEMO_SCHEMA_SQL = `
create extension if not exists pgcrypto;
create table if not exists public.users (id uuid primary key, home_region text not null, email text, full_name text, updated_at timestamptz);
create table if not exists public.orders (id uuid primary key, user_id uuid, home_region text not null, amount_cents bigint, status text, updated_at timestamptz);
create table if not exists public.products (id bigint primary key, name text, price_cents bigint, stock bigint, updated_at timestamptz);
create table if not exists public.documents (id uuid primary key, user_id uuid, home_region text not null, title text, cid text, s3_key text, updated_at timestamptz);
`;

export const DEMO_TABLES = [
  { name: 'public.users', strategy: 'row-lww' as const, counterColumns: [] as string[] },
  { name: 'public.orders', strategy: 'row-lww' as const, counterColumns: [] as string[] },
  { name: 'public.products', strategy: 'row-lww' as const, counterColumns: ['stock'] },
  { name: 'public.documents', strategy: 'row-lww' as const, counterColumns: [] as string[] },
];

/** Order-independent checksum of a table's rows, computed by PostgreSQL itself. */
export function checksumSql(table: string): string {
  return `select count(*)::int as n, coalesce(md5(string_agg(md5(t::text), '' order by md5(t::text))), '') as sum from ${table} t`;
}
