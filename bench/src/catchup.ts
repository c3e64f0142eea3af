// `npm run bench -- catchup [nats|kafka]` (issue 5 point 8): three regions; the first one's
// link to the broker is cut through Toxiproxy for BENCH_CUT_S (default 60 s) while the two
// others write BENCH_RATE rows/s in total (default 1,000; open loop, 100 ms ticks). Writes
// stop when the link is restored; catch-up time is from the restore until the cut region
// holds every row and its table checksum equals the writers' (convergence). It includes the
// agent noticing the link is back (reconnect), since catching up "by itself" is the point.
// Target: catch-up rate (backlog rows / catch-up time) at least 5x the offered write rate.
// Progress goes to stderr; the last stdout line is one JSON object:
// {"bench":"catchup","backlog_rows":…,"catchup_s":…,"rows_per_s":…,"peak_rss_mb":…, …}
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { cutLink, restoreLink } from '@regionsync/stack';
import { Cluster, waitUntil, type Broker } from '@regionsync/sandbox';

const SCHEMA = `create table if not exists public.catchup (id bigint primary key, region text not null, n int not null, pad text, written_at timestamptz not null default now());`;
const TABLES = [{ name: 'public.catchup', strategy: 'row-lww' as const, counterColumns: [] as string[] }];
const TICK_MS = 100;
const TARGET_FACTOR = 5;

const log = (m: string) => console.error(`[catchup] ${m}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function numEnv(name: string, dflt: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}: expected a positive number, got '${raw}'`);
  return v;
}

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

async function health(url: string): Promise<{ mode: string }> {
  const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as { mode: string };
}

/** Open-loop writer: `rate` rows/s in one region, ids from `base`, until `until` (ms epoch). */
async function paced(url: string, region: string, base: number, rate: number, until: number): Promise<{ rows: number; behindMaxMs: number }> {
  const c = new pg.Client({ connectionString: url, application_name: `bench-catchup-${region}` });
  await c.connect();
  let rows = 0;
  let behindMaxMs = 0;
  const t0 = Date.now();
  try {
    for (let tick = 1; ; tick++) {
      const due = t0 + tick * TICK_MS;
      if (due > until) break;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      else behindMaxMs = Math.max(behindMaxMs, -wait);
      // Rows owed by now (catches up after a slow commit, so the offered rate holds).
      const owed = Math.floor(((Math.min(Date.now(), until) - t0) / 1000) * rate) - rows;
      if (owed <= 0) continue;
      await c.query(`insert into public.catchup (id, region, n, pad) select $1::bigint + g, $2, g, md5(g::text) from generate_series(0, $3::int - 1) g`, [base + rows, region, owed]);
      rows += owed;
    }
  } finally {
    await c.end();
  }
  return { rows, behindMaxMs };
}

async function checksum(c: Cluster, region: string): Promise<{ n: number; sum: string }> {
  return (await c.query<{ n: number; sum: string }>(region, `select count(*)::int as n, coalesce(md5(string_agg(id::text || ':' || region || ':' || n || ':' || pad, ',' order by id)), '') as sum from public.catchup`))[0]!;
}

async function rowCount(c: Cluster, region: string): Promise<number> {
  return (await c.query<{ n: number }>(region, 'select count(*)::int as n from public.catchup'))[0]!.n;
}

export async function main(args: string[]): Promise<void> {
  const broker = (args[0] ?? 'nats') as Broker;
  if (broker !== 'nats' && broker !== 'kafka') throw new Error(`expected nats or kafka, got '${args[0]}'`);
  const cutS = numEnv('BENCH_CUT_S', 60);
  const rate = numEnv('BENCH_RATE', 1000);
  const timeoutS = numEnv('BENCH_CATCHUP_TIMEOUT_S', 600);

  // A fresh prefix per run: streams/topics of an earlier run can never leak in.
  const cluster = await Cluster.create({ database: `bench_catchup_${broker}`, broker, prefix: `rs-catchup-${broker}-${Date.now().toString(36)}`, schemaSql: SCHEMA, tables: TABLES, agentRuntime: 'dist' });
  const [cut, ...writers] = cluster.regions as [string, ...string[]];
  if (writers.length === 0) throw new Error('the catch-up benchmark needs at least two regions');
  const perWriter = rate / writers.length;
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb(cluster.agents.get(cut)?.process?.pid))), 250);
  try {
    log(`${broker}: starting ${cluster.regions.length} agents (database ${cluster.o.database}, logs in ${cluster.dir})`);
    await cluster.startAll();
    const cutUrl = cluster.agents.get(cut)!.httpUrl;

    // Warm-up: the path works end to end before the cut (not counted).
    log(`warm-up: ${rate} rows/s for 5 s`);
    const warm = await Promise.all(writers.map((r, i) => paced(cluster.dbUrl(r), r, 1e12 * (i + 1), perWriter, Date.now() + 5000)));
    const warmRows = warm.reduce((a, w) => a + w.rows, 0);
    await waitUntil('warm-up rows in the cut region', async () => (await checksum(cluster, cut)).n === warmRows, 300_000, 250);

    log(`cutting ${cut} from ${broker} for ${cutS} s while ${writers.join(', ')} write ${rate} rows/s`);
    await cutLink(cut, broker);
    const cutAt = Date.now();
    await waitUntil(`${cut} autonomous`, async () => (await health(cutUrl)).mode === 'autonomous', 60_000, 250);
    const writeFrom = Date.now();
    const during = await Promise.all(writers.map((r, i) => paced(cluster.dbUrl(r), r, 1e12 * (i + 1) + 1e9, perWriter, cutAt + cutS * 1000)));
    const backlog = during.reduce((a, w) => a + w.rows, 0);
    const offered = backlog / ((cutAt + cutS * 1000 - writeFrom) / 1000);
    const before = await checksum(cluster, cut);
    log(`cut over: ${backlog} rows written (${Math.round(offered)} rows/s offered; writers at most ${Math.max(...during.map((w) => w.behindMaxMs))} ms behind schedule); ${cut} holds ${before.n - warmRows} of them; peak RSS so far ${Math.round(peak)} MB`);

    // Every writer region holds the same rows (they are connected): that is the target state.
    const want = await checksum(cluster, writers[0]!);
    await waitUntil('writer regions agree', async () => {
      for (const r of writers) if ((await checksum(cluster, r)).sum !== want.sum) return false;
      return true;
    }, 300_000, 500);

    await restoreLink(cut, broker);
    const restoredAt = performance.now();
    let reconnectS = NaN;
    let firstRowS = NaN;
    let last = before;
    await waitUntil(`${cut} converged after the restore`, async () => {
      const sinceRestore = (performance.now() - restoredAt) / 1000;
      if (Number.isNaN(reconnectS) && (await health(cutUrl)).mode === 'connected') reconnectS = sinceRestore;
      // A row count is cheap; the full checksum (an md5 over every row) runs only once the
      // count matches, so polling does not take CPU from the catch-up it measures (2 cores).
      const n = await rowCount(cluster, cut);
      if (Number.isNaN(firstRowS) && n > before.n) firstRowS = sinceRestore;
      if (n !== want.n) {
        last = { n, sum: '' };
        return false;
      }
      last = await checksum(cluster, cut);
      return last.n === want.n && last.sum === want.sum;
    }, timeoutS * 1000, 100).catch((err: unknown) => {
      throw new Error(`${(err as Error).message} (${cut} holds ${last.n} of ${want.n} rows)`, { cause: err });
    });
    const catchupS = (performance.now() - restoredAt) / 1000;
    const rowsPerS = backlog / catchupS;
    const result = {
      bench: 'catchup',
      backlog_rows: backlog,
      catchup_s: Math.round(catchupS * 100) / 100,
      rows_per_s: Math.round(rowsPerS),
      peak_rss_mb: Math.round(peak),
      broker,
      cut_s: cutS,
      offered_rows_per_s: Math.round(offered),
      reconnect_s: Math.round(reconnectS * 100) / 100,
      first_row_s: Math.round(firstRowS * 100) / 100,
      target_rows_per_s: TARGET_FACTOR * rate,
      target_met: rowsPerS >= TARGET_FACTOR * rate,
    };
    log(`${cut} converged ${catchupS.toFixed(1)} s after the restore (back to connected after ${reconnectS.toFixed(1)} s, first row applied after ${firstRowS.toFixed(1)} s): ${Math.round(rowsPerS)} rows/s, ${(rowsPerS / rate).toFixed(1)}x the offered rate (target ${TARGET_FACTOR}x: ${result.target_met ? 'met' : 'NOT met'})`);
    console.log(JSON.stringify(result));
  } finally {
    clearInterval(sampler);
    await restoreLink(cut, broker).catch(() => undefined);
    await cluster.stop();
  }
}
