// One measured phase: runs a workload while recording where the CPU time goes (agents,
// broker, proxy, walsender, apply backend, the machine), what the apply and walsender
// sessions are doing (sampled), and the agents' own counters.
import { ActivitySampler } from './activity.js';
import { log, withClient } from './pg-util.js';
import { CpuMeter, round } from './proc.js';
import { delta, histogramQuantiles, scrape } from './prom.js';
import type { SystemUnderTest } from './systems.js';

export interface PhaseReport {
  cpu: ReturnType<CpuMeter['stop']>;
  applySession: Record<string, number>;
  walsender: Record<string, number>;
  agents: Record<string, Record<string, number>>;
}

async function backendPids(url: string, where: string): Promise<number[]> {
  return withClient(url, async (c) => (await c.query<{ pid: number }>(`select pid from pg_stat_activity where ${where}`)).rows.map((r) => r.pid));
}

const COUNTERS = [
  'regionsync_transactions_captured_total',
  'regionsync_rows_captured_total',
  'regionsync_transactions_applied_total',
  'regionsync_rows_applied_total',
  'regionsync_bus_errors_total',
  'regionsync_apply_errors_total',
  'regionsync_capture_errors_total',
];

export async function measurePhase<T>(s: SystemUnderTest, name: string, work: () => Promise<T>): Promise<{ result: T; report: PhaseReport }> {
  const applyPids = await backendPids(s.dstUrl, s.applyWhere);
  const senderPids = await backendPids(s.srcUrl, s.senderWhere);
  // The destination's own slot (regionsync): its walsender decodes every applied row too,
  // only for the agent to drop it as an echo (PostgreSQL 15's pgoutput cannot filter by origin).
  const dstSenderPids = await backendPids(s.dstUrl, s.senderWhere);
  const agentPids = s.agentPids();
  const infra = s.infraPids();
  const cpu = new CpuMeter(() => {
    const g: Record<string, number[]> = { 'pg-walsender(src)': senderPids, 'pg-apply-backend(dst)': applyPids, ...(dstSenderPids.length > 0 ? { 'pg-walsender(dst)': dstSenderPids } : {}), ...infra };
    for (const [k, pid] of Object.entries(agentPids)) if (pid !== undefined) g[k] = [pid];
    return g;
  }).start();
  const applySampler = await new ActivitySampler(s.dstUrl, s.applyWhere, true).start();
  const senderSampler = await new ActivitySampler(s.srcUrl, s.senderWhere).start();
  const urls = s.agentUrls();
  const before = Object.fromEntries(await Promise.all(Object.entries(urls).map(async ([k, u]) => [k, await scrape(u)] as const)));
  let result: T;
  let applySession: Record<string, number> = {};
  let walsender: Record<string, number> = {};
  try {
    result = await work();
  } finally {
    // Always stop the samplers: their sessions would otherwise keep the run alive.
    applySession = await applySampler.stop();
    walsender = await senderSampler.stop();
  }
  const cpuReport = cpu.stop();
  const agents: Record<string, Record<string, number>> = {};
  for (const [k, u] of Object.entries(urls)) {
    const after = await scrape(u);
    const b = before[k] ?? new Map<string, number>();
    const out: Record<string, number> = {};
    for (const c of COUNTERS) {
      const d = delta(after, b, c);
      if (d !== 0) out[c.replace(/^regionsync_/, '').replace(/_total$/, '')] = d;
    }
    // Where a change's time goes: commit to bus-confirmed at the source, commit to applied
    // at the destination (estimated from the agents' histograms, bucket-interpolated).
    for (const [metric, label] of [['regionsync_capture_delay_seconds', 'capture_delay'], ['regionsync_apply_delay_seconds', 'apply_delay']] as const) {
      const h = histogramQuantiles(after, b, metric, [0.5, 0.99]);
      if (h) [out[`${label}_p50_ms`], out[`${label}_p99_ms`]] = h.quantiles.map((q) => (q === undefined ? NaN : round(q * 1000, 2)));
    }
    const lag = after.get('regionsync_agent_nodejs_eventloop_lag_p99_seconds');
    if (lag !== undefined) out.eventloop_lag_p99_ms = round(lag * 1000, 1);
    agents[k] = out;
  }
  log(`${s.name} ${name}: cpu ${JSON.stringify(cpuReport)}`);
  if (cpuReport.restarted) log(`${s.name} ${name}: WARNING: ${cpuReport.restarted.join(', ')} exited or restarted during this phase (not by the bench); its numbers are contaminated`);
  log(`${s.name} ${name}: apply session (dst), % of samples: ${JSON.stringify(applySession, null, 1)}`);
  log(`${s.name} ${name}: walsender (src), % of samples: ${JSON.stringify(walsender)}`);
  if (Object.keys(agents).length > 0) log(`${s.name} ${name}: agent counters ${JSON.stringify(agents)}`);
  return { result, report: { cpu: cpuReport, applySession, walsender, agents } };
}
