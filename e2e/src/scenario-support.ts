// Shared helpers for the fault scenarios (issue 5): agent RSS from /proc, health and metric
// reads, slot and origin positions, broker stop/start on the shared stack, env-tunable
// durations, and one call that runs every invariant check of checkers.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveLayout, up } from '@regionsync/stack';
import { Cluster, checksumSql, waitUntil, type Broker } from '@regionsync/sandbox';
import { checkCounters, checkNoLostWrite, checkNoResurrection, loadRegionState, parseMetrics, waitForConvergence, type AgentEndpoint, type ConvergenceResult, type RegionState, type Violation } from './checkers.js';
import { seedProducts, type CounterDelta, type RecordedWrite } from './workload.js';

/** A positive number from the environment, or the fallback (CI default). */
export function envNumber(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const s = env[name];
  if (s === undefined || s === '') return fallback;
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(s)}`);
  return n;
}

/**
 * A subject/topic prefix of its own for every run: streams and topics outlive a run, and a
 * fresh database fed by an earlier run's leftover messages would not be a fresh cluster.
 */
export function freshPrefix(name: string): string {
  return `rs-${name.replace(/[^a-z0-9]/g, '')}-${Date.now().toString(36)}`.slice(0, 40);
}

export function endpoints(c: Cluster): AgentEndpoint[] {
  return c.regions.map((r) => ({ region: r, url: c.dbUrl(r), httpUrl: c.agents.get(r)!.httpUrl }));
}

// ---------------------------------------------------------------------------------------
// Memory

/** Resident set size of a process in bytes, from /proc/<pid>/status (VmRSS); undefined once it is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export const mb = (bytes: number) => Math.round((bytes / (1024 * 1024)) * 10) / 10;

export interface RssSeries {
  region: string;
  samples: { t: number; pid: number; bytes: number }[];
}

/**
 * Samples the RSS of every agent process of the cluster (following restarts: the pid is
 * read from the cluster's handle at every tick) until stopped.
 */
export class RssSampler {
  private timer: ReturnType<typeof setInterval> | undefined;
  readonly series = new Map<string, RssSeries>();
  /** Epoch ms the samples' `t` is relative to. */
  t0 = Date.now();

  constructor(private readonly cluster: Cluster, private readonly regions: string[] = cluster.regions, private readonly everyMs = 250) {
    for (const r of regions) this.series.set(r, { region: r, samples: [] });
  }

  start(): this {
    this.t0 = Date.now();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    return this;
  }

  stop(): this {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
    return this;
  }

  sample(): void {
    for (const r of this.regions) {
      const pid = this.cluster.agents.get(r)?.process?.pid;
      if (pid === undefined) continue;
      const bytes = rssBytes(pid);
      if (bytes !== undefined) this.series.get(r)!.samples.push({ t: Date.now() - this.t0, pid, bytes });
    }
  }

  /** Peak RSS of a region's agent, optionally only between two epoch-ms instants. */
  peakBytes(region: string, from = 0, to = Infinity): number {
    return Math.max(0, ...this.series.get(region)!.samples.filter((s) => s.t + this.t0 >= from && s.t + this.t0 <= to).map((s) => s.bytes));
  }

  /** Per region: samples, first/min/max/last in MB, for the test's report. */
  summary(): Record<string, { samples: number; firstMb: number; minMb: number; maxMb: number; lastMb: number }> {
    const out: Record<string, { samples: number; firstMb: number; minMb: number; maxMb: number; lastMb: number }> = {};
    for (const [r, s] of this.series) {
      const b = s.samples.map((x) => x.bytes);
      if (b.length === 0) continue;
      out[r] = { samples: b.length, firstMb: mb(b[0]!), minMb: mb(Math.min(...b)), maxMb: mb(Math.max(...b)), lastMb: mb(b[b.length - 1]!) };
    }
    return out;
  }

  /** Max RSS in MB per time bucket (e.g. 10 s), to show the curve over a cut. */
  curve(region: string, bucketMs = 10_000): number[] {
    const out: number[] = [];
    for (const s of this.series.get(region)!.samples) {
      const i = Math.floor(s.t / bucketMs);
      out[i] = Math.max(out[i] ?? 0, mb(s.bytes));
    }
    return Array.from(out, (x) => x ?? 0);
  }
}

// ---------------------------------------------------------------------------------------
// Agent health and metrics

export interface AgentHealth {
  region: string;
  mode: string;
  bus: { connected: boolean };
  database?: { connected: boolean; downForMs?: number };
  confirmedLsn: string | null;
  pendingTransactions: number;
  slotsLost?: number;
  slotRetainedWalBytes: number;
  apply: { delivered: number; acked: number; deadLettered: number; inFlight: number; standby: boolean } | null;
  alarms: string[];
}

export async function agentHealth(httpUrl: string): Promise<AgentHealth> {
  const res = await fetch(`${httpUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`${httpUrl}/healthz answered ${res.status}`);
  return (await res.json()) as AgentHealth;
}

/** Every sample of one metric, labels included. */
export async function metricSamples(httpUrl: string, name: string): Promise<{ labels: Record<string, string>; value: number }[]> {
  const res = await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`${httpUrl}/metrics answered ${res.status}`);
  return parseMetrics(await res.text()).filter((m) => m.name === name);
}

/** The value of the agent's mode gauge that is 1 (the current mode), from /metrics. */
export async function metricMode(httpUrl: string): Promise<string | undefined> {
  return (await metricSamples(httpUrl, 'regionsync_agent_mode')).find((m) => m.value === 1)?.labels.mode;
}

// ---------------------------------------------------------------------------------------
// Slot and origin positions

/** Compares two pg_lsn texts (X/Y hex). */
export function lsnToBigInt(lsn: string): bigint {
  const [hi, lo] = lsn.split('/') as [string, string];
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

export async function slotPosition(c: Cluster, region: string): Promise<{ confirmed: string; restart: string; current: string; retained: number; active: boolean }> {
  const r = await c.query<{ confirmed: string; restart: string; current: string; retained: string; active: boolean }>(
    region,
    `select confirmed_flush_lsn::text as confirmed, restart_lsn::text as restart, pg_current_wal_lsn()::text as current,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text as retained, active
       from pg_replication_slots where database = current_database() and slot_name like 'regionsync%'`,
  );
  if (r.length !== 1) throw new Error(`expected one regionsync slot in ${region}/${c.o.database}, found ${r.length}`);
  return { ...r[0]!, retained: Number(r[0]!.retained) };
}

export async function currentWalLsn(c: Cluster, region: string): Promise<string> {
  return (await c.query<{ lsn: string }>(region, 'select pg_current_wal_lsn()::text as lsn'))[0]!.lsn;
}

/**
 * Commit LSN of the newest transaction from `source` that `destination` applied, read from
 * destination's replication origin (committed with the apply transaction). Null if none yet.
 */
export async function originProgress(c: Cluster, destination: string, source: string): Promise<string | null> {
  const name = `regionsync_${c.o.database.replace(/\W/g, '_').toLowerCase()}_${source.replace(/-/g, '_')}`.slice(0, 63);
  const r = await c.query<{ lsn: string | null }>(destination, 'select remote_lsn::text as lsn from pg_replication_origin_status where external_id = $1', [name]);
  const lsn = r[0]?.lsn ?? null;
  return lsn === '0/0' ? null : lsn;
}

/**
 * Commit LSNs of the local transactions whose publish the agent (process `pid`) reported as
 * failed since `sinceMs`, read from its log ("publish failed; retrying", message id
 * `<region>:<commit LSN>:<chunk>`): transactions the broker has not confirmed. Sorted.
 */
export function failedPublishLsns(logPath: string, pid: number, sinceMs: number): string[] {
  const out = new Set<string>();
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    if (!line.includes('publish failed')) continue;
    let j: { pid?: number; time?: number; id?: string; msg?: string };
    try {
      j = JSON.parse(line) as typeof j;
    } catch {
      continue;
    }
    if (j.pid !== pid || (j.time ?? 0) < sinceMs || j.msg !== 'publish failed; retrying' || !j.id) continue;
    const m = /^[^:]+:([0-9A-Fa-f]+\/[0-9A-Fa-f]+):\d+$/.exec(j.id);
    if (m) out.add(m[1]!);
  }
  return [...out].sort((a, b) => (lsnToBigInt(a) < lsnToBigInt(b) ? -1 : lsnToBigInt(a) > lsnToBigInt(b) ? 1 : 0));
}

// ---------------------------------------------------------------------------------------
// Brokers (shared stack): stop by pid file, start again with the stack's own up()

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function brokerPid(broker: Broker): number {
  const file = join(resolveLayout().stateDir, 'run', `${broker}.pid`);
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]?.trim());
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) throw new Error(`${broker} is not running (pid file ${file})`);
  return pid;
}

/** Whether the broker's pid file names a live process (another test run may have restarted it). */
export function brokerRunning(broker: Broker): boolean {
  try {
    brokerPid(broker);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM the broker, SIGKILL after the deadline; resolves once it has exited. */
export async function stopBroker(broker: Broker, timeoutMs = 60_000): Promise<void> {
  const pid = brokerPid(broker);
  process.kill(pid, 'SIGTERM');
  try {
    await waitUntil(`${broker} (pid ${pid}) to exit`, async () => !alive(pid), timeoutMs, 100);
  } catch {
    process.kill(pid, 'SIGKILL');
    await waitUntil(`${broker} (pid ${pid}) to exit after SIGKILL`, async () => !alive(pid), 10_000, 100);
  }
}

/** Starts whatever is not running (the stack's up()) and waits until it is healthy. */
export async function startBroker(broker: Broker, timeoutMs = 240_000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${broker} did not become healthy within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    await Promise.race([up({ log: (m) => console.error(`[stack] ${m}`) }), deadline]);
  } finally {
    clearTimeout(timer);
  }
  brokerPid(broker);
}

// ---------------------------------------------------------------------------------------
// Setup and checks

/** Seeds products 1..n with `stock` in the first region and waits until every region has them. */
export async function seedProductsEverywhere(c: Cluster, agents: AgentEndpoint[], n: number, stock: number): Promise<Map<number, bigint>> {
  await seedProducts(agents[0]!.url, n, stock);
  await waitUntil('seeded products in every region', async () => {
    for (const a of agents) {
      const r = await c.query<{ n: number }>(a.region, 'select count(*)::int as n from public.products where id <= $2 and stock = $1', [stock, n]);
      if (r[0]!.n !== n) return false;
    }
    return true;
  }, 180_000);
  return new Map(Array.from({ length: n }, (_, i) => [i + 1, BigInt(stock)] as const));
}

/** A fresh 3-region cluster with every agent started and products 1..n seeded everywhere. */
export async function seededCluster(o: { name: string; broker: Broker; products: number; stock?: number }): Promise<{ cluster: Cluster; agents: AgentEndpoint[]; initial: Map<number, bigint> }> {
  const cluster = await Cluster.create({ database: `e2e_${o.name}_${o.broker}`, broker: o.broker, prefix: freshPrefix(`${o.name}${o.broker}`) });
  await cluster.startAll();
  const agents = endpoints(cluster);
  const initial = await seedProductsEverywhere(cluster, agents, o.products, o.stock ?? 1000);
  return { cluster, agents, initial };
}

/** Whether every region of the cluster holds the same rows in each of `tables` (by checksum). */
export async function tablesConverged(c: Cluster, tables: string[]): Promise<boolean> {
  for (const t of tables) {
    const sums = await Promise.all(c.regions.map(async (r) => (await c.query<{ sum: string }>(r, checksumSql(t)))[0]!.sum));
    if (new Set(sums).size !== 1) return false;
  }
  return true;
}

/**
 * Takes the region's slot away from its running agent: its walsender is terminated and the
 * slot dropped, retried until a drop lands before the agent reconnects.
 */
export async function dropSlotUnderAgent(c: Cluster, region: string): Promise<void> {
  await waitUntil(`${region} slot dropped`, async () => {
    try {
      await c.query(region, `select pg_terminate_backend(active_pid) from pg_replication_slots where database = current_database() and active_pid is not null`);
      await c.query(region, `select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = current_database()`);
      return true;
    } catch {
      return false;
    }
  }, 60_000, 0);
}

export interface CheckedRun {
  convergence: ConvergenceResult;
  states: RegionState[];
  violations: Violation[];
}

/** Waits for convergence, then runs no-lost-write, no-resurrection and counter checks. */
export async function convergeAndCheck(agents: AgentEndpoint[], o: { writes: RecordedWrite[]; deltas: CounterDelta[]; initial: Map<number, bigint>; timeoutMs: number; tag: string }): Promise<CheckedRun> {
  const convergence = await waitForConvergence(agents, o.timeoutMs);
  console.log(`[${o.tag}] convergence: ${convergence.converged ? 'yes' : 'NO'} after ${convergence.ms} ms (${convergence.polls} polls)${convergence.why ? `: ${convergence.why}` : ''}`);
  const states: RegionState[] = [];
  for (const a of agents) states.push(await loadRegionState(a));
  const violations = [...checkNoLostWrite(o.writes, states), ...checkNoResurrection(states), ...checkCounters(o.initial, o.deltas, states)];
  if (violations.length > 0) {
    const byCheck: Record<string, number> = {};
    for (const v of violations) byCheck[`${v.check}@${v.region}`] = (byCheck[`${v.check}@${v.region}`] ?? 0) + 1;
    console.log(`[${o.tag}] ${violations.length} violations: ${JSON.stringify(byCheck)}\n${violations.slice(0, 30).map((v) => `  ${v.check} ${v.region}: ${v.detail}`).join('\n')}`);
  }
  return { convergence, states, violations };
}

export const describeViolations = (v: Violation[]) => v.slice(0, 20).map((x) => `${x.check} ${x.region}: ${x.detail}`);
