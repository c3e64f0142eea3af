import pg from 'pg';

export function log(msg: string): void {
  console.error(`[bench] ${new Date().toISOString().slice(11, 23)} ${msg}`);
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url, application_name: 'regionsync-bench' });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Drops (terminating sessions and this database's inactive slots) and recreates a database. */
export async function recreateDatabase(adminUrl: string, database: string): Promise<void> {
  await withClient(adminUrl, async (c) => {
    await c.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [database]);
    await c.query('select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1 and not active', [database]);
    await c.query(`drop database if exists "${database}"`);
    await c.query(`create database "${database}"`);
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
