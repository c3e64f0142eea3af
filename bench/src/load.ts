// The two workloads. Both write only on the source; ids never overlap between phases.
import pg from 'pg';
import { cpuSeconds } from './proc.js';
import { LATENCY_ID_BASE } from './schema.js';
import { log, sleep } from './pg-util.js';

const PAYLOAD = "repeat('x', 100)";

/** Bulk phase: `rows` rows in `txRows`-row autocommit transactions from one connection, as fast as it goes. */
export async function bulkLoad(url: string, rows: number, txRows: number): Promise<{ loadS: number; writerCpuS: number }> {
  const c = new pg.Client({ connectionString: url, application_name: 'regionsync-bench-writer' });
  await c.connect();
  try {
    const pid = (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    const cpu0 = cpuSeconds(pid) ?? 0;
    const t0 = performance.now();
    for (let first = 0; first < rows; first += txRows) {
      const last = Math.min(rows, first + txRows) - 1;
      await c.query(`insert into public.bench_rows (id, payload, sent_at) select g, ${PAYLOAD}, clock_timestamp() from generate_series($1::bigint, $2::bigint) g`, [first, last]);
    }
    const loadS = (performance.now() - t0) / 1000;
    return { loadS, writerCpuS: (cpuSeconds(pid) ?? 0) - cpu0 };
  } finally {
    await c.end();
  }
}

export interface PacedResult {
  issued: number;
  failed: number;
  offeredPerS: number;
  achievedPerS: number;
  maxBacklog: number;
  /** CPU seconds the source's writer backends spent (inserts, incl. triggers, and commits). */
  writerCpuS: number;
  firstId: number;
  lastId: number;
}

/**
 * The latency phase's writer sessions: plain clients used round robin (each queues its own
 * queries), as an application's pool of warm connections would be. Opened once, so the
 * warm-up and the measured phase share them: a fresh backend's first inserts (catalog
 * caches, the triggers' plpgsql compiled per session) would otherwise land in the
 * measured phase's first second.
 */
export class Writers {
  private constructor(
    readonly clients: pg.Client[],
    private readonly pids: number[],
  ) {}

  static async open(url: string, connections: number): Promise<Writers> {
    const clients = Array.from({ length: connections }, () => new pg.Client({ connectionString: url, application_name: 'regionsync-bench-writer' }));
    await Promise.all(clients.map((c) => c.connect()));
    const pids = await Promise.all(clients.map(async (c) => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid));
    return new Writers(clients, pids);
  }

  /** CPU seconds the writer backends have used so far. */
  cpuS(): number {
    return this.pids.reduce((a, p) => a + (cpuSeconds(p) ?? 0), 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.end()));
  }
}

/**
 * Latency phase: open loop. Single-row autocommit inserts are offered at `ratePerS` for
 * `durationS`, whatever the commit times (a closed loop on one connection cannot hold
 * 1,000/s); the writers' sessions share the work. sent_at is clock_timestamp() in the
 * insert itself, so client-side queueing never counts as replication latency.
 */
export async function pacedLoad(writers: Writers, ratePerS: number, durationS: number, idBase = LATENCY_ID_BASE): Promise<PacedResult> {
  // The insert is a named prepared statement, as an application would use; no pool
  // checkout per insert (bench CPU on the machine whose saturation this phase measures).
  const clients = writers.clients;
  const connections = clients.length;
  const cpu0 = writers.cpuS();
  const sql = `insert into public.bench_rows (id, payload, sent_at) values ($1, ${PAYLOAD}, clock_timestamp())`;
  let issued = 0;
  let done = 0;
  let failed = 0;
  let maxBacklog = 0;
  const inflight = new Set<Promise<void>>();
  const start = performance.now();
  const end = start + durationS * 1000;
  let lastLog = start;
  for (let now = start; now < end; now = performance.now()) {
    const due = Math.floor(((now - start) * ratePerS) / 1000);
    while (issued < due) {
      const id = idBase + issued++;
      const p: Promise<void> = clients[issued % connections]!.query({ name: 'bench-insert', text: sql, values: [id] }).then(
        () => void done++,
        (err: unknown) => {
          failed++;
          if (failed <= 3) log(`latency insert ${id} failed: ${err instanceof Error ? err.message : String(err)}`);
        },
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
    maxBacklog = Math.max(maxBacklog, inflight.size);
    if (now - lastLog > 2000) {
      lastLog = now;
      log(`  paced load: ${issued} offered, ${done} committed, backlog ${inflight.size}`);
    }
    await sleep(1);
  }
  const offeredS = (performance.now() - start) / 1000;
  await Promise.all(inflight);
  const totalS = (performance.now() - start) / 1000;
  const writerCpuS = writers.cpuS() - cpu0;
  return { issued, failed, offeredPerS: issued / offeredS, achievedPerS: done / totalS, maxBacklog, writerCpuS, firstId: idBase, lastId: idBase + issued - 1 };
}
