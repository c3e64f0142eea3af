// Reads on the destination: when rows became visible, and commit→visible latency.
import pg from 'pg';
import { sleep } from './pg-util.js';

/**
 * Polls until `expected` rows with ids in [lo, hi] are visible; resolves with the
 * performance.now() time at which they were. The last id's presence is checked first
 * (an index probe) so the poll itself stays cheap; the count confirms.
 */
export async function waitVisible(url: string, lo: number, hi: number, expected: number, timeoutMs: number, onProgress?: (n: number) => void): Promise<number> {
  const c = new pg.Client({ connectionString: url, application_name: 'regionsync-bench-poller' });
  await c.connect();
  try {
    const deadline = performance.now() + timeoutMs;
    let lastProgress = performance.now();
    while (performance.now() < deadline) {
      const last = await c.query('select 1 from public.bench_rows where id = $1', [hi]);
      // If the last id was never committed (a failed insert), fall back to counting every time.
      if (last.rowCount === 1 || expected < hi - lo + 1) {
        const t = performance.now();
        const n = Number((await c.query<{ n: string }>('select count(*) as n from public.bench_rows where id between $1 and $2', [lo, hi])).rows[0]!.n);
        if (n >= expected) return t;
      }
      if (onProgress && performance.now() - lastProgress > 2000) {
        lastProgress = performance.now();
        onProgress(Number((await c.query<{ n: string }>('select count(*) as n from public.bench_rows where id between $1 and $2', [lo, hi])).rows[0]!.n));
      }
      await sleep(5);
    }
    const n = Number((await c.query<{ n: string }>('select count(*) as n from public.bench_rows where id between $1 and $2', [lo, hi])).rows[0]!.n);
    throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s: ${n} of ${expected} rows visible at the destination`);
  } finally {
    await c.end();
  }
}

export interface LatencyStats {
  n: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** arrived_at − sent_at over the rows in [lo, hi] (same machine, same clock). */
export async function latencyStats(url: string, lo: number, hi: number): Promise<LatencyStats> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ n: string; p: number[]; mx: number }>(
      `select count(*) as n,
              percentile_cont(array[0.5, 0.9, 0.99]) within group (order by extract(epoch from arrived_at - sent_at) * 1000) as p,
              max(extract(epoch from arrived_at - sent_at) * 1000)::float8 as mx
         from public.bench_rows where id between $1 and $2 and arrived_at is not null`,
      [lo, hi],
    );
    const row = r.rows[0]!;
    // Rows that arrived without arrived_at mean the destination's trigger did not fire:
    // a broken measurement, not a latency of zero rows.
    const missing = await c.query<{ n: string }>(`select count(*) as n from public.bench_rows where id between $1 and $2 and arrived_at is null`, [lo, hi]);
    if (Number(missing.rows[0]!.n) > 0) throw new Error(`latency: ${missing.rows[0]!.n} rows in [${lo}, ${hi}] arrived without arrived_at (did the destination's bench_arrived trigger fire for applied rows?)`);
    const p = (row.p ?? []).map(Number);
    return { n: Number(row.n), p50Ms: p[0] ?? NaN, p90Ms: p[1] ?? NaN, p99Ms: p[2] ?? NaN, maxMs: Number(row.mx) };
  } finally {
    await c.end();
  }
}

/**
 * p99 of each second of sent_at over the rows in [lo, hi]: shows whether a phase's p99
 * comes from a steady level or from a few stalls (a major GC, a checkpoint).
 */
export async function p99BySecond(url: string, lo: number, hi: number): Promise<number[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ p: number }>(
      `select percentile_cont(0.99) within group (order by extract(epoch from arrived_at - sent_at) * 1000) as p
         from public.bench_rows where id between $1 and $2 and arrived_at is not null
        group by date_trunc('second', sent_at) order by date_trunc('second', sent_at)`,
      [lo, hi],
    );
    return r.rows.map((row) => Number(row.p));
  } finally {
    await c.end();
  }
}

/** Throughput from the database's own clocks: first sent_at on the source to last arrived_at. */
export async function arrivalSpanS(url: string, lo: number, hi: number): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ s: number }>('select extract(epoch from max(arrived_at) - min(sent_at))::float8 as s from public.bench_rows where id between $1 and $2', [lo, hi]);
    return Number(r.rows[0]!.s);
  } finally {
    await c.end();
  }
}
