// Checkers for the convergence scenario: wait until every region holds the same data and
// every agent has applied everything, then check no lost write, no resurrection and
// counters equal to the sum of their increments.
import pg from 'pg';
import { checksumSql } from '@regionsync/sandbox';
import { compareVersions, type CounterDelta, type DataTable, type RecordedWrite, type RegionTarget, type Version } from './workload.js';

export const DATA_TABLES: DataTable[] = ['public.users', 'public.orders', 'public.documents', 'public.products'];

export interface AgentEndpoint extends RegionTarget {
  httpUrl: string;
}

type Checksums = Record<string, { n: number; sum: string }>;

export interface RegionSnapshot {
  region: string;
  checksums: Checksums;
  /** Digest of (table, pk, hlc, region, deleted) of every row version, tombstones included. */
  versionsDigest: string;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function snapshot(t: RegionTarget): Promise<RegionSnapshot> {
  return withClient(t.url, async (c) => {
    const checksums: Checksums = {};
    for (const table of DATA_TABLES) checksums[table] = (await c.query<{ n: number; sum: string }>(checksumSql(table))).rows[0]!;
    const v = await c.query<{ d: string }>(
      `select coalesce(md5(string_agg(table_name || ':' || pk || ':' || hlc || ':' || region || ':' || deleted::text, ',' order by table_name, pk)), '') as d from regionsync.row_versions`,
    );
    return { region: t.region, checksums, versionsDigest: v.rows[0]!.d };
  });
}

// ---------------------------------------------------------------------------------------
// Agent progress

/** Parses Prometheus text into name{labels} -> value. */
export function parseMetrics(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export interface AgentProgress {
  region: string;
  captured: number; // local transactions captured and published
  applied: Record<string, number>; // source -> remote transaction chunks applied
  skipped: Record<string, number>;
  applyErrors: number;
  conflicts: number;
  /** Process start (s since epoch): the counters above count since then. */
  startedAt: number;
}

export async function agentProgress(a: AgentEndpoint): Promise<AgentProgress> {
  const res = await fetch(`${a.httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`${a.region} /metrics answered ${res.status}`);
  const p: AgentProgress = { region: a.region, captured: 0, applied: {}, skipped: {}, applyErrors: 0, conflicts: 0, startedAt: Number.NaN };
  for (const m of parseMetrics(await res.text())) {
    if (m.name === 'regionsync_transactions_captured_total') p.captured += m.value;
    else if (m.name === 'regionsync_transactions_applied_total') p.applied[m.labels.source!] = (p.applied[m.labels.source!] ?? 0) + m.value;
    else if (m.name === 'regionsync_transactions_skipped_total') p.skipped[m.labels.source!] = (p.skipped[m.labels.source!] ?? 0) + m.value;
    else if (m.name === 'regionsync_apply_errors_total') p.applyErrors += m.value;
    else if (m.name === 'regionsync_conflicts_total') p.conflicts += m.value;
    else if (m.name === 'regionsync_agent_process_start_time_seconds') p.startedAt = m.value;
  }
  if (!Number.isFinite(p.startedAt)) throw new Error(`${a.region} /metrics has no regionsync_agent_process_start_time_seconds`);
  return p;
}

/**
 * Pairs where a destination applied fewer transactions from a source than the source
 * captured. Counters live per process, so the comparison only holds when the destination
 * has been up for the whole life of the source's current process (it started no later):
 * a destination restarted since then applied part of the source's transactions in an
 * earlier process. Such pairs are left to the durable checks (slot markers, checksums,
 * version digests), which do not depend on process lifetimes.
 */
export function countShortfalls(progress: AgentProgress[]): string[] {
  const out: string[] = [];
  for (const dst of progress) {
    for (const src of progress) {
      if (src.region === dst.region || dst.startedAt > src.startedAt) continue;
      const applied = dst.applied[src.region] ?? 0;
      if (applied < src.captured) out.push(`${dst.region} applied ${applied}/${src.captured} transactions from ${src.region}`);
    }
  }
  return out;
}

/**
 * Emits a transactional logical message in every region; its LSN is past every write
 * committed before. Capture is caught up once the slot's confirmed position passes it
 * (the slot is only acknowledged after the bus confirmed everything before).
 */
export async function emitMarkers(targets: RegionTarget[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of targets) out[t.region] = await withClient(t.url, async (c) => (await c.query<{ lsn: string }>(`select pg_logical_emit_message(true, 'regionsync-e2e', 'marker')::text as lsn`)).rows[0]!.lsn);
  return out;
}

async function slotPassed(t: RegionTarget, marker: string): Promise<boolean> {
  return withClient(t.url, async (c) => {
    const r = await c.query<{ ok: boolean }>(`select coalesce(bool_and(confirmed_flush_lsn >= $1::pg_lsn), false) as ok from pg_replication_slots where database = current_database() and slot_name like 'regionsync%'`, [marker]);
    return r.rows[0]?.ok ?? false;
  });
}

export interface ConvergenceResult {
  converged: boolean;
  ms: number;
  polls: number;
  snapshots: RegionSnapshot[];
  progress: AgentProgress[];
  why: string; // what still differed at the deadline
}

/**
 * Polls until, in every region, per-table checksums and row-version digests are equal,
 * every slot is confirmed past the marker and every agent applied at least as many
 * transactions from each source as that source captured (where the counters are
 * comparable, see countShortfalls).
 */
export async function waitForConvergence(agents: AgentEndpoint[], timeoutMs: number, everyMs = 500): Promise<ConvergenceResult> {
  const started = Date.now();
  const markers = await emitMarkers(agents);
  let polls = 0;
  let why = '';
  let snapshots: RegionSnapshot[] = [];
  let progress: AgentProgress[] = [];
  while (true) {
    polls += 1;
    try {
      const reasons: string[] = [];
      for (const a of agents) if (!(await slotPassed(a, markers[a.region]!))) reasons.push(`${a.region}: slot not confirmed past ${markers[a.region]}`);
      progress = await Promise.all(agents.map(agentProgress));
      reasons.push(...countShortfalls(progress));
      snapshots = await Promise.all(agents.map(snapshot));
      const first = snapshots[0]!;
      for (const s of snapshots.slice(1)) {
        for (const table of DATA_TABLES) {
          const a = first.checksums[table]!;
          const b = s.checksums[table]!;
          if (a.n !== b.n || a.sum !== b.sum) reasons.push(`${table}: ${first.region} ${a.n} rows ${a.sum.slice(0, 8)} vs ${s.region} ${b.n} rows ${b.sum.slice(0, 8)}`);
        }
        if (s.versionsDigest !== first.versionsDigest) reasons.push(`row_versions differ between ${first.region} and ${s.region}`);
      }
      why = reasons.join('; ');
      if (reasons.length === 0) return { converged: true, ms: Date.now() - started, polls, snapshots, progress, why: '' };
    } catch (err) {
      why = `poll failed: ${(err as Error).message}`;
    }
    if (Date.now() - started > timeoutMs) return { converged: false, ms: Date.now() - started, polls, snapshots, progress, why };
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// ---------------------------------------------------------------------------------------
// Invariant checks on the converged state

interface StoredVersion extends Version {
  deleted: boolean;
}

export interface RegionState {
  region: string;
  versions: Map<string, StoredVersion>; // table \0 pk -> version (tombstones included)
  live: Map<string, Set<string>>; // table -> pks of live rows
  stock: Map<number, bigint>;
  conflicts: number;
  conflictsByTable: Record<string, number>;
}

const keyOf = (table: string, pk: string) => `${table}\u0000${pk}`;

export async function loadRegionState(t: RegionTarget): Promise<RegionState> {
  return withClient(t.url, async (c) => {
    const versions = new Map<string, StoredVersion>();
    for (const r of (await c.query<{ table_name: string; pk: string; hlc: string; region: string; deleted: boolean }>('select table_name, pk, hlc, region, deleted from regionsync.row_versions')).rows) {
      versions.set(keyOf(r.table_name, r.pk), { hlc: r.hlc, region: r.region, deleted: r.deleted });
    }
    const live = new Map<string, Set<string>>();
    for (const table of DATA_TABLES) live.set(table, new Set((await c.query<{ pk: string }>(`select id::text as pk from ${table}`)).rows.map((r) => r.pk)));
    const stock = new Map<number, bigint>();
    for (const r of (await c.query<{ id: string; stock: string | null }>('select id::text, stock::text from public.products')).rows) stock.set(Number(r.id), BigInt(r.stock ?? '0'));
    const conflictsByTable: Record<string, number> = {};
    for (const r of (await c.query<{ table_name: string; n: number }>('select table_name, count(*)::int as n from regionsync.conflicts group by 1')).rows) conflictsByTable[r.table_name] = r.n;
    return { region: t.region, versions, live, stock, conflicts: Object.values(conflictsByTable).reduce((a, b) => a + b, 0), conflictsByTable };
  });
}

export interface Violation {
  check: 'lost-write' | 'resurrection' | 'counter' | 'unversioned-row';
  region: string;
  detail: string;
}

/** Every acknowledged write is present with an equal-or-newer version in every region. */
export function checkNoLostWrite(writes: RecordedWrite[], states: RegionState[]): Violation[] {
  const out: Violation[] = [];
  for (const w of writes) {
    for (const s of states) {
      const v = s.versions.get(keyOf(w.table, w.pk));
      const live = s.live.get(w.table)!.has(w.pk);
      const what = `${w.op} of ${w.table} ${w.pk} by ${w.writer} at ${w.hlc}/${w.region}`;
      if (!v) {
        out.push({ check: 'lost-write', region: s.region, detail: `${what}: no version at all (row ${live ? 'live' : 'absent'})` });
        continue;
      }
      const cmp = compareVersions(v, w);
      if (cmp < 0) out.push({ check: 'lost-write', region: s.region, detail: `${what}: region holds older version ${v.hlc}/${v.region}${v.deleted ? ' (tombstone)' : ''}` });
      else if (cmp === 0) {
        // Same version: the region must hold exactly this write's outcome.
        if (w.deleted && live) out.push({ check: 'lost-write', region: s.region, detail: `${what}: delete's version is current but the row is live` });
        if (!w.deleted && (v.deleted || !live)) out.push({ check: 'lost-write', region: s.region, detail: `${what}: write's version is current but the row is ${v.deleted ? 'tombstoned' : 'absent'}` });
      }
    }
  }
  return out;
}

/**
 * No resurrection: a row whose version is a tombstone is absent everywhere; no region has a
 * live row older than a tombstone any region holds; every live row has a version.
 */
export function checkNoResurrection(states: RegionState[]): Violation[] {
  const out: Violation[] = [];
  const newestTombstone = new Map<string, StoredVersion & { holder: string }>();
  for (const s of states) {
    for (const [k, v] of s.versions) {
      if (!v.deleted) continue;
      const [table, pk] = k.split('\u0000') as [string, string];
      if (s.live.get(table)?.has(pk)) out.push({ check: 'resurrection', region: s.region, detail: `${table} ${pk} is live although its version ${v.hlc}/${v.region} is a tombstone` });
      const cur = newestTombstone.get(k);
      if (!cur || compareVersions(v, cur) > 0) newestTombstone.set(k, { ...v, holder: s.region });
    }
  }
  for (const s of states) {
    for (const [table, pks] of s.live) {
      for (const pk of pks) {
        const k = keyOf(table, pk);
        const v = s.versions.get(k);
        if (!v) {
          out.push({ check: 'unversioned-row', region: s.region, detail: `${table} ${pk} is live without a row version` });
          continue;
        }
        if (v.deleted) continue; // reported above
        const t = newestTombstone.get(k);
        if (t && compareVersions(v, t) <= 0) out.push({ check: 'resurrection', region: s.region, detail: `${table} ${pk} is live at ${v.hlc}/${v.region}, not newer than the tombstone ${t.hlc}/${t.region} held by ${t.holder}` });
      }
    }
  }
  return out;
}

/** Every product's stock equals its initial value plus the sum of every recorded increment, in every region. */
export function checkCounters(initial: Map<number, bigint>, deltas: CounterDelta[], states: RegionState[]): Violation[] {
  const expected = new Map(initial);
  for (const d of deltas) expected.set(d.productId, (expected.get(d.productId) ?? 0n) + BigInt(d.delta));
  const out: Violation[] = [];
  for (const s of states) {
    for (const [id, want] of expected) {
      const got = s.stock.get(id);
      if (got !== want) out.push({ check: 'counter', region: s.region, detail: `products ${id}: stock ${got ?? 'missing'}, expected ${want} (initial ${initial.get(id) ?? 0} + ${deltas.filter((d) => d.productId === id).length} increments)` });
    }
  }
  return out;
}

export interface Figures {
  broker: string;
  seed: number;
  durationS: number;
  transactionsCommitted: number;
  transactionsRolledBack: Record<string, number>;
  rowsPerTx: { min: number; max: number; mean: number };
  writesRecorded: number;
  writesByOp: Record<string, number>;
  counterIncrements: number;
  convergeMs: number;
  rowsPerTable: Record<string, number>;
  tombstones: number;
  conflictsPerRegion: Record<string, number>;
  conflictsByTable: Record<string, number>;
  violations: number;
}

export function figures(o: { broker: string; seed: number; durationMs: number; committed: number; rolledBack: Record<string, number>; rowsPerTx: Figures['rowsPerTx']; writes: RecordedWrite[]; deltas: CounterDelta[]; convergence: ConvergenceResult; states: RegionState[]; violations: Violation[] }): Figures {
  const writesByOp: Record<string, number> = {};
  for (const w of o.writes) writesByOp[w.op] = (writesByOp[w.op] ?? 0) + 1;
  const first = o.states[0]!;
  const rowsPerTable: Record<string, number> = {};
  for (const [t, pks] of first.live) rowsPerTable[t] = pks.size;
  const conflictsByTable: Record<string, number> = {};
  for (const s of o.states) for (const [t, n] of Object.entries(s.conflictsByTable)) conflictsByTable[t] = (conflictsByTable[t] ?? 0) + n;
  return {
    broker: o.broker,
    seed: o.seed,
    durationS: Math.round(o.durationMs / 100) / 10,
    transactionsCommitted: o.committed,
    transactionsRolledBack: o.rolledBack,
    rowsPerTx: { ...o.rowsPerTx, mean: Math.round(o.rowsPerTx.mean * 10) / 10 },
    writesRecorded: o.writes.length,
    writesByOp,
    counterIncrements: o.deltas.length,
    convergeMs: o.convergence.ms,
    rowsPerTable,
    tombstones: [...first.versions.values()].filter((v) => v.deleted).length,
    conflictsPerRegion: Object.fromEntries(o.states.map((s) => [s.region, s.conflicts])),
    conflictsByTable,
    violations: o.violations.length,
  };
}
