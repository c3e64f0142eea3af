// A rolling update, on NATS and on Kafka (3 regions, the real stack): while every region
// writes, each region in turn gets a second agent process started next to the running one
// (as Kubernetes does with maxSurge), and only once the new one is ready is the old one
// stopped with SIGTERM. For a while two agents share the region's slot (one streams, the
// other waits), its replication origins and its durable consumer. Afterwards: convergence,
// no lost write, no resurrection, exact counters (a change applied by both, or by neither,
// shows there), and the new agents capture and apply on their own.
//
// Reproduce: E2E_SEED=<printed seed> npx vitest run -c vitest.int.config.ts rolling-update
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil, type Broker, type Cluster } from '@regionsync/sandbox';
import type { AgentEndpoint } from './checkers.js';
import { agentHealth, convergeAndCheck, describeViolations, endpoints, envNumber, metricSamples, seededCluster } from './scenario-support.js';
import { runWorkload, seedFromEnv } from './workload.js';

const OVERLAP_MS = envNumber('E2E_OVERLAP_S', 5) * 1000;
const WRITERS = envNumber('E2E_WRITERS', 1);
const CONVERGE_TIMEOUT_MS = envNumber('E2E_CONVERGE_TIMEOUT_S', 300) * 1000;
const PRODUCTS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const metricTotal = async (httpUrl: string, name: string) => (await metricSamples(httpUrl, name)).reduce((a, m) => a + m.value, 0);

describe.each(['nats', 'kafka'] as Broker[])('rolling update on %s (3 regions)', (broker) => {
  let cluster: Cluster;
  let agents: AgentEndpoint[] = [];
  let initial = new Map<number, bigint>();
  const tag = `rolling ${broker}`;

  beforeAll(async () => {
    ({ cluster, agents, initial } = await seededCluster({ name: 'roll', broker, products: PRODUCTS }));
  }, 900_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 300_000);

  it('every agent replaced under load with an overlap: nothing lost, nothing applied twice', async () => {
    const seed = (seedFromEnv() + 4) >>> 0;
    console.log(`[${tag}] seed=${seed} overlap ${OVERLAP_MS / 1000} s; logs in ${cluster.dir}`);
    const workload = runWorkload({ targets: agents, seed, durationMs: 5000 + cluster.regions.length * (OVERLAP_MS + 8000), writersPerRegion: WRITERS, products: PRODUCTS, log: (l) => console.log(`[${tag}] ${l}`) });
    workload.catch(() => undefined);
    const swaps: { region: string; readyMs: number; oldExit: number | null; takeoverMs: number; applyTakeoverMs: number }[] = [];
    try {
      await sleep(5000);
      for (const region of cluster.regions) {
        const t0 = Date.now();
        const { old, handle } = await cluster.startReplacement(region, 120_000);
        const readyMs = Date.now() - t0;
        // NATS: the durable pins the old agent; the new one applies nothing meanwhile (two
        // agents pulling at once split the stream, and a change the old one held was lost).
        if (broker === 'nats') await waitUntil(`new ${region} agent stands by`, async () => (await agentHealth(handle.httpUrl)).apply?.standby === true, 30_000, 250);
        await sleep(OVERLAP_MS);
        expect(old?.process?.exitCode, `old ${region} agent still running during the overlap`).toBeNull();
        const exited = new Promise<number | null>((resolve) => old!.process!.once('exit', (code) => resolve(code)));
        old!.process!.kill('SIGTERM');
        const oldExit = await exited;
        const exitAt = Date.now();
        // The new agent takes over apply: it no longer stands by, and a write in another
        // region moves its applied counter.
        const other = cluster.regions.find((r) => r !== region)!;
        const appliedAt = await metricTotal(handle.httpUrl, 'regionsync_transactions_applied_total');
        await waitUntil(`new ${region} agent applies`, async () => {
          await cluster.query(other, `update products set name = name where id = 2`);
          return (await agentHealth(handle.httpUrl)).apply?.standby === false && (await metricTotal(handle.httpUrl, 'regionsync_transactions_applied_total')) > appliedAt;
        }, 60_000, 250);
        const applyTakeoverMs = Date.now() - exitAt;
        // The new agent takes over capture: a local write moves its own counter once the old
        // one is gone.
        const capturedAt = await metricTotal(handle.httpUrl, 'regionsync_transactions_captured_total');
        await waitUntil(`new ${region} agent captures`, async () => {
          await cluster.query(region, `update products set name = name where id = 1`);
          return (await metricTotal(handle.httpUrl, 'regionsync_transactions_captured_total')) > capturedAt;
        }, 60_000, 250);
        swaps.push({ region, readyMs, oldExit, takeoverMs: Date.now() - exitAt, applyTakeoverMs });
        await sleep(3000);
      }
    } finally {
      await workload.catch(() => undefined);
    }
    const w = await workload;
    agents = endpoints(cluster);
    const run = await convergeAndCheck(agents, { writes: w.writes, deltas: w.deltas, initial, timeoutMs: CONVERGE_TIMEOUT_MS, tag });
    for (const a of agents) expect((await agentHealth(a.httpUrl)).mode, `${a.region} mode`).toBe('connected');
    console.log(`[${tag}] figures ${JSON.stringify({ broker, seed, swaps, transactions: w.committed, convergeMs: run.convergence.ms })}`);
    for (const s of swaps) expect(s.oldExit, `old ${s.region} agent drained and exited cleanly`).toBe(0);
    expect(run.convergence.why, `seed ${seed}`).toBe('');
    expect(run.convergence.converged).toBe(true);
    expect(describeViolations(run.violations), `seed ${seed}`).toEqual([]);
  }, 900_000);
});
