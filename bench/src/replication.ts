// `npm run bench -- replication`: regionsync on NATS and on Kafka against PostgreSQL's
// native logical replication, between the same two clusters (us-east-1 → eu-west-1).
//   (a) throughput: BENCH_ROWS rows (default 200,000) in 1,000-row transactions, time
//       from the first commit until all are visible in the destination;
//   (b) latency: single-row commits offered open-loop at 1,000/s for 10 s, p50/p99 of
//       arrived_at − sent_at (same machine, same clock), after an unmeasured warm-up at
//       the same rate (10 s) so it is the steady state a long-running agent sees, not the
//       seconds in which V8 is still compiling the single-row path; the warm-up's own
//       p50/p99 are printed to stderr and kept in the JSON as warmup_p50_ms/warmup_p99_ms.
// The three systems run one after another on their own database pairs. Progress and the
// "where the time goes" breakdown go to stderr; the last stdout line is one JSON object.
// Each system also reports cpu_s_per_1k_rows (machine CPU of its throughput phase, bench
// client excluded) and each regionsync system ratio_cpu (native's CPU per row over its own):
// with the two cores busy in that phase, the throughput ratio cannot exceed ratio_cpu.
// Knobs: BENCH_ROWS (200000), BENCH_TX_ROWS (1000), BENCH_RATE (1000/s),
// BENCH_LATENCY_SECONDS (10), BENCH_WARMUP_SECONDS (10, 0 for none), BENCH_CONNECTIONS (8), BENCH_SYSTEMS or the first argument
// (native,nats,kafka), BENCH_AGENT_CONFIG (JSON merged into both agents' config, e.g.
// {"replication":{"chunkRows":5000}}), BENCH_CPU_PROF=<dir> (agents' V8 CPU profiles, summarised).
import { ensureStack } from '@regionsync/stack';
import { summariseProfiles } from './cpuprofile.js';
import { bulkLoad, pacedLoad, Writers } from './load.js';
import { arrivalSpanS, latencyStats, p99BySecond, waitVisible } from './measure.js';
import { measurePhase } from './phase.js';
import { log, sleep, withClient } from './pg-util.js';
import { round, RssSampler } from './proc.js';
import { WARMUP_ID_BASE } from './schema.js';
import { nativeSystem, regionsyncSystem, type SystemName, type SystemUnderTest } from './systems.js';

const SRC = 'us-east-1';
const DST = 'eu-west-1';

function intEnv(name: string, dflt: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name}: expected an integer of at least ${min}, got '${raw}'`);
  return v;
}

interface SystemResult {
  rows_per_s: number;
  p50_ms: number;
  p99_ms: number;
  warmup_p50_ms?: number;
  warmup_p99_ms?: number;
  agent_rss_mb?: number;
  /** Machine CPU seconds (every process but the bench client) per 1,000 rows of the throughput phase. */
  cpu_s_per_1k_rows: number;
}

async function runSystem(s: SystemUnderTest, o: { rows: number; txRows: number; rate: number; seconds: number; warmupSeconds: number; connections: number }): Promise<SystemResult> {
  log(`${s.name}: setting up ${s.database} in ${SRC} → ${DST}`);
  await s.setup();
  const rss = new RssSampler(() => s.agentPids()).start();
  try {
    // (a) throughput
    log(`${s.name}: throughput, ${o.rows} rows in ${o.txRows}-row transactions`);
    const { result: tp, report: tpReport } = await measurePhase(s, 'throughput', async () => {
      const t0 = performance.now();
      const visible = waitVisible(s.dstUrl, 0, o.rows - 1, o.rows, 30 * 60_000, (n) => log(`  ${n} of ${o.rows} rows visible`));
      const { loadS, writerCpuS } = await bulkLoad(s.srcUrl, o.rows, o.txRows);
      log(`  source committed ${o.rows} rows in ${loadS.toFixed(2)} s (${Math.round(o.rows / loadS)} rows/s; writer backend CPU ${writerCpuS.toFixed(2)} s)`);
      const tVisible = await visible;
      return { loadS, totalS: (tVisible - t0) / 1000 };
    });
    const spanS = await arrivalSpanS(s.dstUrl, 0, o.rows - 1);
    const rowsPerS = o.rows / tp.totalS;
    log(`${s.name}: throughput ${Math.round(rowsPerS)} rows/s (${tp.totalS.toFixed(2)} s to visible; source load ${tp.loadS.toFixed(2)} s; drain after last commit ${(tp.totalS - tp.loadS).toFixed(2)} s; by database clocks ${spanS.toFixed(2)} s)`);
    const cpuPer1k = ((tpReport.cpu.machineBusyS - tpReport.cpu.benchS) / o.rows) * 1000;
    log(`${s.name}: throughput phase used ${cpuPer1k.toFixed(4)} CPU-s per 1,000 rows (whole machine but the bench client: writer backend with its triggers, walsender, agents, broker, apply backend, WAL writer…, and the stack's idle services); the machine was ${Math.round((100 * tpReport.cpu.machineBusyS) / tpReport.cpu.machineTotalS)} % busy`);

    // The bulk load leaves work behind (autovacuum and autoanalyze of 200,000 new rows, a
    // checkpoint of their WAL) that would otherwise land in the latency phase at a random
    // moment, on both systems' shared two cores: do it now, the same for every system.
    const settleS = await settle([s.srcUrl, s.dstUrl]);
    log(`${s.name}: vacuum, analyze and checkpoint between the phases took ${settleS.toFixed(2)} s`);
    await sleep(1000);

    // (b) latency, after a warm-up at the same rate: the first seconds of single-row
    // commits run while V8 still optimises that path (hundreds of functions in the applying
    // agent), which a long-running agent pays once; printed, not measured.
    const writers = await Writers.open(s.srcUrl, o.connections);
    let warmupIds: { firstId: number; lastId: number; issued: number; failed: number } | undefined;
    let lat: Awaited<ReturnType<typeof pacedLoad>>;
    try {
      if (o.warmupSeconds > 0) {
        log(`${s.name}: warm-up (not measured), single-row commits offered at ${o.rate}/s for ${o.warmupSeconds} s`);
        const w = await pacedLoad(writers, o.rate, o.warmupSeconds, WARMUP_ID_BASE);
        await waitVisible(s.dstUrl, w.firstId, w.lastId, w.issued - w.failed, 10 * 60_000, (n) => log(`  ${n} of ${w.issued - w.failed} warm-up rows visible`));
        warmupIds = w;
      }

      // (b) latency, on the same writer sessions
      log(`${s.name}: latency, single-row commits offered at ${o.rate}/s for ${o.seconds} s on ${o.connections} connections`);
      ({ result: lat } = await measurePhase(s, 'latency', async () => {
        const paced = await pacedLoad(writers, o.rate, o.seconds);
        log(`  offered ${paced.issued} (${paced.offeredPerS.toFixed(0)}/s), committed at ${paced.achievedPerS.toFixed(0)}/s, ${paced.failed} failed, max client backlog ${paced.maxBacklog}, writer backends CPU ${paced.writerCpuS.toFixed(2)} s`);
        await waitVisible(s.dstUrl, paced.firstId, paced.lastId, paced.issued - paced.failed, 10 * 60_000, (n) => log(`  ${n} of ${paced.issued - paced.failed} rows visible`));
        return paced;
      }));
    } finally {
      await writers.close();
    }
    // Read after the measured phase, so no query of ours separates the two.
    const warmup = warmupIds ? await latencyStats(s.dstUrl, warmupIds.firstId, warmupIds.lastId) : undefined;
    if (warmup && warmupIds) log(`${s.name}: warm-up latency over ${warmupIds.issued - warmupIds.failed} rows: p50 ${warmup.p50Ms.toFixed(2)} ms, p99 ${warmup.p99Ms.toFixed(2)} ms`);
    const st = await latencyStats(s.dstUrl, lat.firstId, lat.lastId);
    log(`${s.name}: latency over ${st.n} rows: p50 ${st.p50Ms.toFixed(2)} ms, p90 ${st.p90Ms.toFixed(2)} ms, p99 ${st.p99Ms.toFixed(2)} ms, max ${st.maxMs.toFixed(2)} ms`);
    log(`${s.name}: latency p99 by second of the phase (ms): ${(await p99BySecond(s.dstUrl, lat.firstId, lat.lastId)).map((v) => v.toFixed(1)).join(' ')}`);
    const agentRss = rss.stop();
    const mb = (m: Map<string, number>) => JSON.stringify(Object.fromEntries([...m].map(([k, v]) => [k, round(v, 1)])));
    if (rss.maxMb.size > 0) log(`${s.name}: agent RSS max ${mb(rss.maxMb)} MB; idle before the load ${mb(rss.idleMb)} MB`);
    return { rows_per_s: Math.round(rowsPerS), p50_ms: round(st.p50Ms, 2), p99_ms: round(st.p99Ms, 2), ...(warmup ? { warmup_p50_ms: round(warmup.p50Ms, 2), warmup_p99_ms: round(warmup.p99Ms, 2) } : {}), ...(rss.maxMb.size > 0 ? { agent_rss_mb: round(agentRss, 1) } : {}), cpu_s_per_1k_rows: round(cpuPer1k, 4) };
  } finally {
    rss.stop();
    await s.teardown().catch((err: unknown) => log(`${s.name}: teardown failed: ${err instanceof Error ? err.message : String(err)}`));
  }
}

export async function main(args: string[]): Promise<void> {
  const o = {
    rows: intEnv('BENCH_ROWS', 200_000),
    txRows: intEnv('BENCH_TX_ROWS', 1000),
    rate: intEnv('BENCH_RATE', 1000),
    seconds: intEnv('BENCH_LATENCY_SECONDS', 10),
    warmupSeconds: intEnv('BENCH_WARMUP_SECONDS', 10, 0),
    connections: intEnv('BENCH_CONNECTIONS', 8),
  };
  const agentConfig = process.env.BENCH_AGENT_CONFIG ? (JSON.parse(process.env.BENCH_AGENT_CONFIG) as Record<string, unknown>) : {};
  const only = (args[0] ?? process.env.BENCH_SYSTEMS ?? 'native,nats,kafka').split(',').map((x) => x.trim()) as SystemName[];
  const env = await ensureStack();
  for (const r of [SRC, DST]) if (!env.regions[r]) throw new Error(`the stack has no region ${r} (regions: ${env.regionNames.join(', ')})`);
  log(`replication bench: ${JSON.stringify(o)}, systems ${only.join(', ')}, agent config ${JSON.stringify(agentConfig)}; machine shared with other workloads, numbers are noisy`);

  const results: Partial<Record<SystemName, SystemResult | { error: string }>> = {};
  const systems: SystemUnderTest[] = [];
  if (only.includes('native')) systems.push(nativeSystem(env, SRC, DST));
  if (only.includes('nats')) systems.push(regionsyncSystem('nats', env, SRC, DST, agentConfig));
  if (only.includes('kafka')) systems.push(regionsyncSystem('kafka', env, SRC, DST, agentConfig));
  for (const s of systems) {
    try {
      results[s.name] = await runSystem(s, o);
    } catch (err) {
      log(`${s.name}: FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      results[s.name] = { error: err instanceof Error ? err.message : String(err) };
    }
  }

  const native = results.native && 'rows_per_s' in results.native ? results.native : undefined;
  const out: Record<string, unknown> = { bench: 'replication' };
  if (results.native) out.native = results.native;
  for (const b of ['nats', 'kafka'] as const) {
    const r = results[b];
    if (!r) continue;
    out[b] = 'rows_per_s' in r && native ? { ...r, ratio_throughput: round(r.rows_per_s / native.rows_per_s, 3), ratio_p99: round(r.p99_ms / native.p99_ms, 2), ratio_cpu: round(native.cpu_s_per_1k_rows / r.cpu_s_per_1k_rows, 3) } : r;
    // Both systems keep the two cores nearly busy in the throughput phase, so the throughput
    // ratio is bounded by the inverse ratio of their CPU per row: what it would take to
    // reach a target is read off here, not guessed.
    if ('rows_per_s' in r && native) log(`${b}: CPU per row ${round(r.cpu_s_per_1k_rows / native.cpu_s_per_1k_rows, 2)}x native's; throughput ratio ${round(r.rows_per_s / native.rows_per_s, 3)}, CPU ratio (its ceiling on a CPU-bound machine) ${round(native.cpu_s_per_1k_rows / r.cpu_s_per_1k_rows, 3)}`);
  }
  if (process.env.BENCH_CPU_PROF) log(`agent CPU profiles (${process.env.BENCH_CPU_PROF}):\n${summariseProfiles(process.env.BENCH_CPU_PROF)}`);
  if (o.rows !== 200_000) out.rows = o.rows;
  console.log(JSON.stringify(out));
}

async function settle(urls: string[]): Promise<number> {
  const t0 = performance.now();
  for (const url of urls) {
    await withClient(url, async (c) => {
      await c.query('vacuum (analyze)');
      await c.query('checkpoint');
    });
  }
  return (performance.now() - t0) / 1000;
}
