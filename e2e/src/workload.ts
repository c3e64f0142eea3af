// Concurrent random workload for the convergence scenario: N writers per region commit
// transactions of 1–100 rows (inserts, updates, deletes, upserts, counter increments) on a
// key space shared by every region, and record every *acknowledged* write with the version
// the stamp trigger gave it, read back inside the same transaction.
import pg from 'pg';

export type Op = 'insert' | 'insert-ignore' | 'update' | 'delete' | 'upsert' | 'increment';
export type DataTable = 'public.users' | 'public.orders' | 'public.documents' | 'public.products';

export interface Version {
  hlc: string;
  region: string;
}

/** One committed (acknowledged) write of one row, with the version it was given. */
export interface RecordedWrite extends Version {
  writer: string; // region/writer index
  table: DataTable;
  pk: string; // the primary key's text form (what regionsync.row_versions.pk holds)
  op: Op;
  deleted: boolean; // the version recorded is a tombstone
  txSeq: number;
}

export interface CounterDelta {
  region: string;
  productId: number;
  delta: number;
}

export interface RegionTarget {
  region: string;
  url: string;
}

export interface WorkloadOptions {
  targets: RegionTarget[];
  seed: number;
  durationMs: number;
  writersPerRegion: number;
  /** Keys per uuid table, shared by every region. */
  keysPerTable?: number;
  /** Product ids 1..products (seeded before the workload). */
  products?: number;
  maxRowsPerTx?: number;
  /**
   * Also use `INSERT ... ON CONFLICT DO NOTHING` (on unless E2E_INSERT_IGNORE=0): a no-op insert
   * must not stamp a version (the stamp trigger skips existing keys under a per-key lock).
   */
  insertIgnore?: boolean;
  /**
   * Writers ride out their database going away (a crash, a restart): they reconnect until
   * the deadline, and a transaction whose COMMIT got no answer is recorded only if it
   * committed, which a marker row written in it (table public.e2e_commits, not replicated)
   * tells once the database is back. Not txid_status: after a crash the server hands out
   * again the ids of transactions whose WAL was not flushed, so a lost transaction's id can
   * belong to a committed one by the time it is looked up. Off, a lost connection fails the
   * workload.
   */
  rideOutRestarts?: boolean;
  log?: (line: string) => void;
}

export interface WorkloadResult {
  seed: number;
  durationMs: number;
  writes: RecordedWrite[];
  deltas: CounterDelta[];
  committed: number;
  rolledBack: Record<string, number>; // SQLSTATE -> transactions that did not commit
  /** COMMITs that got no answer (rideOutRestarts): how txid_status resolved them. */
  inDoubt: { committed: number; aborted: number };
  /** Connections lost and made again (rideOutRestarts). */
  reconnects: number;
  rowsPerTx: { min: number; max: number; mean: number };
}

/** Errors that only mean "this transaction did not commit". */
export const RETRYABLE_SQLSTATES = new Set(['40001', '40P01']);

// ---------------------------------------------------------------------------------------
// Seeded PRNG (mulberry32): the seed, printed by the test, reproduces the op streams.

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  uuid(): string {
    const hex = Array.from({ length: 32 }, () => Math.floor(this.next() * 16).toString(16));
    hex[12] = '4';
    hex[16] = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
    const h = hex.join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
}

export function seedFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const s = env.E2E_SEED;
  if (s !== undefined && s !== '') {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new Error(`E2E_SEED must be a non-negative integer, got ${JSON.stringify(s)}`);
    return n >>> 0;
  }
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}

export function durationFromEnv(env: NodeJS.ProcessEnv = process.env, fallbackS = 20): number {
  const s = env.E2E_DURATION_S;
  if (s === undefined || s === '') return fallbackS * 1000;
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`E2E_DURATION_S must be a positive number of seconds, got ${JSON.stringify(s)}`);
  return Math.round(n * 1000);
}

/** (hlc, region) order: hlc strings first (fixed width, string order = time order), then region. */
export function compareVersions(a: Version, b: Version): number {
  if (a.hlc !== b.hlc) return a.hlc < b.hlc ? -1 : 1;
  if (a.region !== b.region) return a.region < b.region ? -1 : 1;
  return 0;
}

// ---------------------------------------------------------------------------------------
// Key space

export interface KeySpace {
  uuids: Record<'public.users' | 'public.orders' | 'public.documents', string[]>;
  products: number[];
}

export function makeKeySpace(seed: number, keysPerTable = 300, products = 20): KeySpace {
  const rng = new Rng(seed ^ 0x5eed);
  const gen = (n: number) => Array.from({ length: n }, () => rng.uuid());
  return {
    uuids: { 'public.users': gen(keysPerTable), 'public.orders': gen(keysPerTable), 'public.documents': gen(Math.max(1, Math.round(keysPerTable * 0.7))) },
    products: Array.from({ length: products }, (_, i) => i + 1),
  };
}

/** One planned row operation. */
export interface PlannedOp {
  table: DataTable;
  pk: string;
  op: Op;
  delta?: number;
}

/**
 * Plans one transaction: 1..maxRows distinct rows, sorted by (table, pk) so concurrent
 * writers always lock in the same order (no writer/writer deadlocks). Products only get
 * counter increments and plain-column updates: they are seeded once, and deleting or
 * re-inserting a counter row has no agreed meaning for "initial + sum of increments".
 */
export function planTransaction(rng: Rng, keys: KeySpace, maxRows: number, opts: { insertIgnore?: boolean } = {}): PlannedOp[] {
  // Mostly small transactions, with a tail up to maxRows.
  const size = rng.next() < 0.6 ? rng.int(1, 10) : rng.int(1, maxRows);
  const chosen = new Map<string, PlannedOp>();
  const uuidTables = Object.keys(keys.uuids) as (keyof KeySpace['uuids'])[];
  let guard = 0;
  while (chosen.size < size && guard++ < size * 20) {
    const r = rng.next();
    let p: PlannedOp;
    if (r < 0.2) {
      const id = rng.pick(keys.products);
      p = rng.next() < 0.75 ? { table: 'public.products', pk: String(id), op: 'increment', delta: rng.int(-5, 10) || 1 } : { table: 'public.products', pk: String(id), op: 'update' };
    } else {
      const table = rng.pick(uuidTables);
      const o = rng.next();
      const op: Op = o < 0.35 ? (opts.insertIgnore && o < 0.12 ? 'insert-ignore' : 'insert') : o < 0.65 ? 'update' : o < 0.85 ? 'delete' : 'upsert';
      p = { table, pk: rng.pick(keys.uuids[table]), op };
    }
    const k = `${p.table}\u0000${p.pk}`;
    if (!chosen.has(k)) chosen.set(k, p);
  }
  return [...chosen.values()].sort((a, b) => (a.table === b.table ? (a.pk < b.pk ? -1 : a.pk > b.pk ? 1 : 0) : a.table < b.table ? -1 : 1));
}

// ---------------------------------------------------------------------------------------
// SQL per op. Each returns whether a row was actually written (rowCount 1).

async function execOp(c: pg.Client, rng: Rng, region: string, p: PlannedOp): Promise<boolean> {
  const n = rng.int(0, 1_000_000);
  const tag = `${region}-${n}`;
  switch (p.table) {
    case 'public.products':
      if (p.op === 'increment') return (await c.query('update public.products set stock = stock + $2 where id = $1', [Number(p.pk), p.delta])).rowCount === 1;
      return (await c.query('update public.products set name = $2, price_cents = $3, updated_at = clock_timestamp() where id = $1', [Number(p.pk), `product ${tag}`, n])).rowCount === 1;
    case 'public.users':
      switch (p.op) {
        case 'insert':
          return insertIfAbsent(c, 'insert into public.users (id, home_region, email, full_name, updated_at) values ($1, $2, $3, $4, clock_timestamp())', [p.pk, region, `${tag}@example.com`, `User ${tag}`]);
        case 'insert-ignore':
          return (await c.query('insert into public.users (id, home_region, email, full_name, updated_at) values ($1, $2, $3, $4, clock_timestamp()) on conflict (id) do nothing', [p.pk, region, `${tag}@example.com`, `User ${tag}`])).rowCount === 1;
        case 'upsert':
          return (await c.query('insert into public.users (id, home_region, email, full_name, updated_at) values ($1, $2, $3, $4, clock_timestamp()) on conflict (id) do update set email = excluded.email, full_name = excluded.full_name, updated_at = excluded.updated_at', [p.pk, region, `${tag}@example.com`, `User ${tag}`])).rowCount === 1;
        case 'update':
          return (await c.query('update public.users set email = $2, full_name = $3, updated_at = clock_timestamp() where id = $1', [p.pk, `${tag}@example.com`, `User ${tag} (updated)`])).rowCount === 1;
        default:
          return (await c.query('delete from public.users where id = $1', [p.pk])).rowCount === 1;
      }
    case 'public.orders':
      switch (p.op) {
        case 'insert':
          return insertIfAbsent(c, 'insert into public.orders (id, user_id, home_region, amount_cents, status, updated_at) values ($1, $2, $3, $4, $5, clock_timestamp())', [p.pk, rng.uuid(), region, n, 'new']);
        case 'insert-ignore':
          return (await c.query('insert into public.orders (id, user_id, home_region, amount_cents, status, updated_at) values ($1, $2, $3, $4, $5, clock_timestamp()) on conflict (id) do nothing', [p.pk, rng.uuid(), region, n, 'new'])).rowCount === 1;
        case 'upsert':
          return (await c.query('insert into public.orders (id, user_id, home_region, amount_cents, status, updated_at) values ($1, $2, $3, $4, $5, clock_timestamp()) on conflict (id) do update set amount_cents = excluded.amount_cents, status = excluded.status, updated_at = excluded.updated_at', [p.pk, rng.uuid(), region, n, 'upserted'])).rowCount === 1;
        case 'update':
          return (await c.query('update public.orders set amount_cents = $2, status = $3, updated_at = clock_timestamp() where id = $1', [p.pk, n, rng.pick(['paid', 'shipped', 'cancelled'])])).rowCount === 1;
        default:
          return (await c.query('delete from public.orders where id = $1', [p.pk])).rowCount === 1;
      }
    case 'public.documents':
      switch (p.op) {
        case 'insert':
          return insertIfAbsent(c, 'insert into public.documents (id, user_id, home_region, title, cid, s3_key, updated_at) values ($1, $2, $3, $4, $5, $6, clock_timestamp())', [p.pk, rng.uuid(), region, `Doc ${tag}`, `bafy${n}`, `docs/${tag}`]);
        case 'insert-ignore':
          return (await c.query('insert into public.documents (id, user_id, home_region, title, cid, s3_key, updated_at) values ($1, $2, $3, $4, $5, $6, clock_timestamp()) on conflict (id) do nothing', [p.pk, rng.uuid(), region, `Doc ${tag}`, `bafy${n}`, `docs/${tag}`])).rowCount === 1;
        case 'upsert':
          return (await c.query('insert into public.documents (id, user_id, home_region, title, cid, s3_key, updated_at) values ($1, $2, $3, $4, $5, $6, clock_timestamp()) on conflict (id) do update set title = excluded.title, cid = excluded.cid, updated_at = excluded.updated_at', [p.pk, rng.uuid(), region, `Doc ${tag}`, `bafy${n}`, `docs/${tag}`])).rowCount === 1;
        case 'update':
          return (await c.query('update public.documents set title = $2, cid = $3, updated_at = clock_timestamp() where id = $1', [p.pk, `Doc ${tag} (edited)`, `bafy${n}`])).rowCount === 1;
        default:
          return (await c.query('delete from public.documents where id = $1', [p.pk])).rowCount === 1;
      }
  }
}

/**
 * A plain INSERT inside a savepoint: a unique violation rolls back to the savepoint, which
 * also undoes the version the stamp trigger wrote, so the row's version stays untouched.
 */
async function insertIfAbsent(c: pg.Client, sql: string, params: unknown[]): Promise<boolean> {
  await c.query('savepoint ins');
  try {
    await c.query(sql, params);
    await c.query('release savepoint ins');
    return true;
  } catch (err) {
    if ((err as { code?: string }).code !== '23505') throw err;
    await c.query('rollback to savepoint ins');
    return false;
  }
}

// ---------------------------------------------------------------------------------------

/** Inserts products 1..n with `stock` in one region (the insert is that region's first contribution). */
export async function seedProducts(url: string, n: number, stock: number): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`insert into public.products (id, name, price_cents, stock, updated_at) select i, 'product ' || i, 100 * i, $2, clock_timestamp() from generate_series(1, $1::int) i`, [n, stock]);
  } finally {
    await c.end();
  }
}

interface WriterStats {
  committed: number;
  rolledBack: Record<string, number>;
  rows: number[];
  inDoubt: { committed: number; aborted: number };
  reconnects: number;
}

// How long a writer keeps trying to reach its database again after the deadline: an
// in-doubt COMMIT must be resolved before the writes are checked.
const RECONNECT_GRACE_MS = 120_000;

/** The connection (not the transaction) failed: the server went away or refused us. */
function connectionLost(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  if (code !== undefined) return code.startsWith('08') || code.startsWith('57P') || ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code);
  return /Connection terminated|not queryable|Client has encountered a connection error/i.test((err as Error).message ?? '');
}

async function connect(target: RegionTarget, index: number, o: WorkloadOptions, deadline: number): Promise<pg.Client> {
  for (;;) {
    const c = new pg.Client({ connectionString: target.url, application_name: `e2e-writer-${target.region}-${index}` });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return c;
    } catch (err) {
      await c.end().catch(() => undefined);
      if (!o.rideOutRestarts || !connectionLost(err) || Date.now() > deadline + RECONNECT_GRACE_MS) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

interface Attempt {
  plan: PlannedOp[];
  done: PlannedOp[];
  versions: Map<string, Version & { deleted: boolean }>;
  txSeq: number;
}

function record(a: Attempt, target: RegionTarget, writer: string, out: { writes: RecordedWrite[]; deltas: CounterDelta[] }, stats: WriterStats): void {
  stats.committed += 1;
  stats.rows.push(a.done.length);
  for (const p of a.done) {
    const v = a.versions.get(`${p.table}\u0000${p.pk}`);
    if (!v) throw new Error(`no row_versions entry for ${p.table} ${p.pk} after a committed ${p.op} in ${target.region} (stamp trigger missing?)`);
    out.writes.push({ writer, table: p.table, pk: p.pk, op: p.op, hlc: v.hlc, region: v.region, deleted: v.deleted, txSeq: a.txSeq });
    if (p.op === 'increment') out.deltas.push({ region: target.region, productId: Number(p.pk), delta: p.delta! });
  }
}

async function runWriter(target: RegionTarget, index: number, rng: Rng, keys: KeySpace, o: WorkloadOptions, deadline: number, out: { writes: RecordedWrite[]; deltas: CounterDelta[] }, stats: WriterStats): Promise<void> {
  let c = await connect(target, index, o, deadline);
  const writer = `${target.region}/${index}`;
  let txSeq = 0;
  try {
    while (Date.now() < deadline) {
      const a: Attempt = { plan: planTransaction(rng, keys, o.maxRowsPerTx ?? 100, { insertIgnore: o.insertIgnore }), done: [], versions: new Map(), txSeq: ++txSeq };
      const marker = `${o.seed}/${writer}/${a.txSeq}`;
      let commitSent = false;
      try {
        await c.query('begin');
        for (const p of a.plan) if (await execOp(c, rng, target.region, p)) a.done.push(p);
        // The versions the stamp trigger gave this transaction's rows (each row is
        // touched once per transaction, so this is the version of this write).
        if (a.done.length > 0) {
          const r = await c.query<{ table_name: string; pk: string; hlc: string; region: string; deleted: boolean }>(
            `select v.table_name, v.pk, v.hlc, v.region, v.deleted from regionsync.row_versions v join unnest($1::text[], $2::text[]) as k(t, pk) on v.table_name = k.t and v.pk = k.pk`,
            [a.done.map((p) => p.table), a.done.map((p) => p.pk)],
          );
          for (const row of r.rows) a.versions.set(`${row.table_name}\u0000${row.pk}`, row);
        }
        if (o.rideOutRestarts) await c.query('insert into public.e2e_commits (id) values ($1)', [marker]);
        commitSent = true;
        await c.query('commit');
        // Acknowledged: record every write of the transaction.
        record(a, target, writer, out, stats);
      } catch (err) {
        if (o.rideOutRestarts && connectionLost(err)) {
          // Before COMMIT was sent the transaction cannot have committed; after, only the
          // server knows.
          await c.end().catch(() => undefined);
          c = await connect(target, index, o, deadline);
          stats.reconnects += 1;
          if (commitSent) {
            const found = (await c.query('select 1 from public.e2e_commits where id = $1', [marker])).rowCount! > 0;
            if (found) {
              stats.inDoubt.committed += 1;
              record(a, target, writer, out, stats);
            } else stats.inDoubt.aborted += 1;
          }
          continue;
        }
        await c.query('rollback').catch(() => undefined);
        const code = (err as { code?: string }).code;
        if (code === undefined || !RETRYABLE_SQLSTATES.has(code)) throw new Error(`writer ${writer} (seed ${o.seed}) failed: ${(err as Error).message}`, { cause: err });
        stats.rolledBack[code] = (stats.rolledBack[code] ?? 0) + 1;
      }
    }
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Runs every writer of every region until the duration is over. */
export async function runWorkload(o: WorkloadOptions): Promise<WorkloadResult> {
  const keys = makeKeySpace(o.seed, o.keysPerTable, o.products);
  const out = { writes: [] as RecordedWrite[], deltas: [] as CounterDelta[] };
  const stats: WriterStats = { committed: 0, rolledBack: {}, rows: [], inDoubt: { committed: 0, aborted: 0 }, reconnects: 0 };
  const started = Date.now();
  const deadline = started + o.durationMs;
  if (o.rideOutRestarts) {
    for (const t of o.targets) {
      const c = new pg.Client({ connectionString: t.url });
      await c.connect();
      try {
        await c.query('create table if not exists public.e2e_commits (id text primary key)');
      } finally {
        await c.end();
      }
    }
  }
  o.log?.(`workload: seed=${o.seed} duration=${o.durationMs} ms writers=${o.writersPerRegion}/region regions=${o.targets.map((t) => t.region).join(',')}`);
  const writers: Promise<void>[] = [];
  for (const [ri, t] of o.targets.entries()) {
    for (let w = 0; w < o.writersPerRegion; w++) writers.push(runWriter(t, w, new Rng((o.seed + (ri + 1) * 7919 + w * 104729) >>> 0), keys, o, deadline, out, stats));
  }
  const results = await Promise.allSettled(writers);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const rows = stats.rows;
  return {
    seed: o.seed,
    durationMs: Date.now() - started,
    writes: out.writes,
    deltas: out.deltas,
    committed: stats.committed,
    rolledBack: stats.rolledBack,
    inDoubt: stats.inDoubt,
    reconnects: stats.reconnects,
    rowsPerTx: { min: rows.length ? Math.min(...rows) : 0, max: rows.length ? Math.max(...rows) : 0, mean: rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : 0 },
  };
}
