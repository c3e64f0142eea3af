// Issue 5 point 2, on NATS and on Kafka (3 regions, the real stack): while every region
// writes, agents are killed with SIGKILL at random points at least E2E_KILLS times (default
// 20) in one run and restarted each time. Kill points are aimed at three phases, and what
// the agent was doing at the moment of the kill is recorded from the outside:
//  - capture: its slot's walsender is streaming the region's own writes,
//  - publish-unacked: /healthz shows captured transactions published but not yet
//    acknowledged on the slot (between publish and slot acknowledgement),
//  - apply: an apply session of the agent has an open transaction (pg_stat_activity).
// Afterwards: convergence (checksums), no lost write, no resurrection, and exact counter
// totals (a change applied twice or lost would show in rows, versions or stock).
//
// Reproduce: E2E_SEED=<printed seed> E2E_KILLS=20 npx vitest run -c vitest.int.config.ts crashes
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker, Cluster } from '@regionsync/sandbox';
import type { AgentEndpoint } from './checkers.js';
import { agentHealth, convergeAndCheck, describeViolations, envNumber, RssSampler, seededCluster } from './scenario-support.js';
import { Rng, runWorkload, seedFromEnv, type CounterDelta, type RecordedWrite } from './workload.js';

const KILLS = envNumber('E2E_KILLS', 20);
const WRITERS = envNumber('E2E_WRITERS', 1);
const CONVERGE_TIMEOUT_MS = envNumber('E2E_CONVERGE_TIMEOUT_S', 300) * 1000;
const PRODUCTS = 20;
const PHASES = ['capture', 'publish-unacked', 'apply'] as const;
type Phase = (typeof PHASES)[number];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface KillRecord {
  n: number;
  region: string;
  aimed: Phase;
  hit: Phase[]; // phases observed in the last look before the kill
  pid: number;
  uptimeMs: number;
  restartMs: number;
}

describe.each(['nats', 'kafka'] as Broker[])('agents killed with SIGKILL under load on %s (3 regions)', (broker) => {
  let cluster: Cluster;
  let agents: AgentEndpoint[] = [];
  let initial = new Map<number, bigint>();
  const tag = `crashes ${broker}`;

  beforeAll(async () => {
    ({ cluster, agents, initial } = await seededCluster({ name: 'crash', broker, products: PRODUCTS }));
  }, 900_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 300_000);

  /** What the agent of `region` is doing right now, as seen from outside. */
  async function phasesNow(region: string): Promise<Phase[]> {
    const out: Phase[] = [];
    const [h, act] = await Promise.all([
      agentHealth(cluster.agents.get(region)!.httpUrl),
      cluster.query<{ apply_tx: number; streaming: number }>(
        region,
        `select (select count(*)::int from pg_stat_activity where datname = current_database() and application_name like 'regionsync-apply-%' and xact_start is not null) as apply_tx,
                (select count(*)::int from pg_replication_slots s join pg_stat_replication r on r.pid = s.active_pid where s.database = current_database() and s.slot_name like 'regionsync%' and r.state = 'streaming') as streaming`,
      ),
    ]);
    if (act[0]!.streaming > 0) out.push('capture');
    if (h.pendingTransactions > 0) out.push('publish-unacked');
    if (act[0]!.apply_tx > 0) out.push('apply');
    return out;
  }

  it(`loses nothing and applies nothing twice across ${KILLS} kills`, async () => {
    const seed = seedFromEnv();
    const rng = new Rng(seed ^ 0xc4a5);
    console.log(`[${tag}] seed=${seed} kills=${KILLS}; logs in ${cluster.dir}`);
    const rss = new RssSampler(cluster).start();
    // Writes flow in 15 s workload segments until the kills are done.
    const writes: RecordedWrite[] = [];
    const deltas: CounterDelta[] = [];
    let stopWrites = false;
    let committed = 0;
    const writing = (async () => {
      for (let seg = 0; !stopWrites; seg++) {
        const w = await runWorkload({ targets: agents, seed: (seed + seg * 15_485_863) >>> 0, durationMs: 15_000, writersPerRegion: WRITERS, products: PRODUCTS });
        // Not push(...list): a long workload records more writes than a call has arguments.
        for (const x of w.writes) writes.push(x);
        for (const x of w.deltas) deltas.push(x);
        committed += w.committed;
      }
    })();
    writing.catch(() => undefined);

    const kills: KillRecord[] = [];
    const started = new Map(cluster.regions.map((r) => [r, Date.now()]));
    try {
      for (let n = 1; n <= KILLS; n++) {
        const region = rng.pick(cluster.regions);
        const aimed = PHASES[(n - 1) % PHASES.length]!;
        // A random moment, then up to 5 s looking for the aimed phase (kill anyway after that).
        await sleep(rng.int(300, 2500));
        let hit: Phase[] = [];
        const lookUntil = Date.now() + 5000;
        while (true) {
          hit = await phasesNow(region).catch(() => []);
          if (hit.includes(aimed) || Date.now() > lookUntil) break;
          await sleep(rng.int(0, 50));
        }
        const pid = cluster.agents.get(region)!.process!.pid!;
        const code = await cluster.stopAgent(region, 'SIGKILL');
        const killedAt = Date.now();
        if (code !== null) throw new Error(`agent ${region} had already exited with ${code} before kill ${n}; see ${cluster.agents.get(region)!.logPath}`);
        await cluster.startAgent(region, 120_000);
        const restartMs = Date.now() - killedAt;
        kills.push({ n, region, aimed, hit, pid, uptimeMs: killedAt - started.get(region)!, restartMs });
        started.set(region, Date.now());
        console.log(`[${tag}] kill ${n}/${KILLS}: ${region} pid ${pid} aimed at ${aimed}, observed [${hit.join(',')}], restarted in ${restartMs} ms`);
      }
    } finally {
      stopWrites = true;
      await writing.catch(() => undefined);
    }
    await writing;
    rss.stop();

    const run = await convergeAndCheck(agents, { writes, deltas, initial, timeoutMs: CONVERGE_TIMEOUT_MS, tag });
    const hits: Record<string, number> = {};
    for (const k of kills) for (const p of k.hit) hits[p] = (hits[p] ?? 0) + 1;
    const perRegion: Record<string, number> = {};
    for (const k of kills) perRegion[k.region] = (perRegion[k.region] ?? 0) + 1;
    console.log(`[${tag}] figures ${JSON.stringify({ broker, seed, kills: kills.length, killsPerRegion: perRegion, killsObservedIn: hits, aimedHit: kills.filter((k) => k.hit.includes(k.aimed)).length, meanRestartMs: Math.round(kills.reduce((a, k) => a + k.restartMs, 0) / kills.length), transactions: committed, writes: writes.length, increments: deltas.length, convergeMs: run.convergence.ms, rss: rss.summary() })}`);

    expect(kills.length).toBeGreaterThanOrEqual(KILLS);
    // Every aimed phase was actually hit by at least one kill.
    for (const p of PHASES) expect(hits[p] ?? 0, `kills that landed in phase ${p}`).toBeGreaterThan(0);
    expect(committed).toBeGreaterThan(0);
    expect(run.convergence.why, `seed ${seed}`).toBe('');
    expect(run.convergence.converged).toBe(true);
    expect(describeViolations(run.violations), `seed ${seed}`).toEqual([]);
  }, 1_800_000);
});
