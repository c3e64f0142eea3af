// Issue 5 point 1, on NATS and on Kafka (3 regions, the real stack):
//  - one region's link to the broker is cut through Toxiproxy for E2E_CUT_S (default 60 s)
//    while every region keeps writing. The cut agent stays up, reports `autonomous` in
//    /healthz and in the mode metric, keeps serving its region (local writes commit, health
//    and metrics answer, its own WAL is still read and the slot metric tracks the retained
//    WAL), never acknowledges its slot past what the broker holds, and its RSS stays under
//    E2E_RSS_BOUND_MB (default 300; the RSS curve over the cut is printed). When the link
//    returns it goes back to `connected` by itself; convergence and no-loss checks pass.
//  - the broker itself is stopped for E2E_BROKER_DOWN_S (default 20 s) and started again,
//    with writes flowing in every region: every agent goes autonomous, holds its slot, comes
//    back by itself; convergence and no-loss checks pass.
//  - one region's replies from the broker are dropped for E2E_REPLY_LOSS_S (default 30 s, long enough for a client's own retries to give up)
//    while its requests still arrive (the broker stores publishes the agent never hears
//    confirmed); every region converges and applies every transaction of every other
//    region (a publish confirmed after a lost reply must have been stored).
//
// Reproduce: E2E_SEED=<printed seed> E2E_CUT_S=60 npx vitest run -c vitest.int.config.ts partition
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cutLink, dropReplies, restoreLink, restoreReplies } from '@regionsync/stack';
import { waitUntil, type Broker, type Cluster } from '@regionsync/sandbox';
import type { AgentEndpoint } from './checkers.js';
import { agentHealth, convergeAndCheck, brokerRunning, currentWalLsn, describeViolations, failedPublishLsns, envNumber, lsnToBigInt, metricMode, metricSamples, originProgress, RssSampler, seededCluster, slotPosition, startBroker, stopBroker } from './scenario-support.js';
import { runWorkload, seedFromEnv, type CounterDelta, type RecordedWrite, type WorkloadResult } from './workload.js';

const CUT_MS = envNumber('E2E_CUT_S', 60) * 1000;
const BROKER_DOWN_MS = envNumber('E2E_BROKER_DOWN_S', 20) * 1000;
const REPLY_LOSS_MS = envNumber('E2E_REPLY_LOSS_S', 30) * 1000;
const WARMUP_MS = 5000; // writes flowing before the fault
const AFTER_MS = 10_000; // writes keep flowing after the link returns
const RSS_BOUND_MB = envNumber('E2E_RSS_BOUND_MB', 300);
const WRITERS = envNumber('E2E_WRITERS', 1);
const CONVERGE_TIMEOUT_MS = envNumber('E2E_CONVERGE_TIMEOUT_S', 300) * 1000;
const PRODUCTS = 20;
const SAMPLE_EVERY_MS = 2000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(['nats', 'kafka'] as Broker[])('partition and broker restart on %s (3 regions)', (broker) => {
  let cluster: Cluster;
  let agents: AgentEndpoint[] = [];
  let initial = new Map<number, bigint>();
  // Every acknowledged write of every workload on this cluster: the checks run on all of them.
  const writes: RecordedWrite[] = [];
  const deltas: CounterDelta[] = [];
  const tag = `partition ${broker}`;

  beforeAll(async () => {
    ({ cluster, agents, initial } = await seededCluster({ name: 'part', broker, products: PRODUCTS }));
  }, 900_000);

  afterAll(async () => {
    for (const r of cluster?.regions ?? []) await restoreLink(r, broker).catch(() => undefined);
    await cluster?.stop();
  }, 300_000);

  it(`a region cut from the broker stays autonomous with bounded memory, holds its slot, and catches up by itself`, async () => {
    const cut = cluster.regions[0]!;
    const others = cluster.regions.filter((r) => r !== cut);
    const seed = seedFromEnv();
    console.log(`[${tag}] seed=${seed} cut=${cut} for ${CUT_MS / 1000} s; logs in ${cluster.dir}`);
    const rss = new RssSampler(cluster, [cut]).start();
    const workload = runWorkload({ targets: agents, seed, durationMs: WARMUP_MS + CUT_MS + AFTER_MS, writersPerRegion: WRITERS, products: PRODUCTS, log: (l) => console.log(`[${tag}] ${l}`) });
    workload.catch(() => undefined);
    const problems: string[] = [];
    try {
      await sleep(WARMUP_MS);
      expect((await agentHealth(cluster.agents.get(cut)!.httpUrl)).mode).toBe('connected');

      await cutLink(cut, broker);
      const cutAt = Date.now();
      const cutLsn = await currentWalLsn(cluster, cut);
      const localBefore = await newestLocalVersion(cluster, cut);
      const httpUrl = cluster.agents.get(cut)!.httpUrl;
      await waitUntil(`${cut} reports autonomous in /healthz and /metrics`, async () => (await agentHealth(httpUrl)).mode === 'autonomous' && (await metricMode(httpUrl)) === 'autonomous', 30_000, 250);
      const detectedMs = Date.now() - cutAt;
      const rssAtCut = rss.peakBytes(cut);

      // Observe the whole cut: every sample must hold.
      let samples = 0;
      let slotMax = '0/0';
      let firstUnconfirmed: string | undefined;
      const agentPid = cluster.agents.get(cut)!.process!.pid!;
      let retainedFirst: number | undefined;
      let retainedLast = 0;
      while (Date.now() < cutAt + CUT_MS) {
        samples += 1;
        const h = await agentHealth(httpUrl);
        const m = await metricMode(httpUrl);
        if (h.mode !== 'autonomous' || m !== 'autonomous') problems.push(`t+${Date.now() - cutAt} ms: mode ${h.mode} / metric ${m}, expected autonomous`);
        if (cluster.agents.get(cut)!.process?.exitCode !== null) problems.push(`t+${Date.now() - cutAt} ms: agent exited`);
        const slot = await slotPosition(cluster, cut);
        if (lsnToBigInt(slot.confirmed) > lsnToBigInt(slotMax)) slotMax = slot.confirmed;
        // The slot never passes a local transaction the broker did not confirm: the first one
        // whose publish failed since the cut (the agent logs each failed message id). Empty
        // transactions (applied remote changes, idle heartbeats) may be acknowledged before it.
        const failed = failedPublishLsns(cluster.agents.get(cut)!.logPath, agentPid, cutAt - 1000);
        firstUnconfirmed ??= failed[0];
        if (firstUnconfirmed !== undefined && lsnToBigInt(slot.confirmed) > lsnToBigInt(firstUnconfirmed)) problems.push(`t+${Date.now() - cutAt} ms: slot confirmed ${slot.confirmed} past ${firstUnconfirmed}, a transaction whose publish the broker never confirmed`);
        // Nothing committed after the cut reached the other regions (the broker never had it).
        for (const o of others) {
          const p = await originProgress(cluster, o, cut);
          if (p !== null && lsnToBigInt(p) > lsnToBigInt(cutLsn)) problems.push(`t+${Date.now() - cutAt} ms: ${o} applied ${cut}'s commit ${p}, after the cut position ${cutLsn}`);
        }
        const retained = (await metricSamples(httpUrl, 'regionsync_slot_retained_wal_bytes'))[0]?.value ?? -1;
        retainedFirst ??= retained;
        retainedLast = retained;
        await sleep(SAMPLE_EVERY_MS);
      }
      const localAfter = await newestLocalVersion(cluster, cut);
      const slotAtEnd = await slotPosition(cluster, cut);
      const cutHealth = await agentHealth(httpUrl);
      // RSS over the cut: every sample from the cut to its end.
      const cutEnd = Date.now();
      const peakMb = rss.peakBytes(cut, cutAt, cutEnd) / (1024 * 1024);
      const cutSamples = rss.series.get(cut)!.samples.filter((s) => s.t + rss.t0 >= cutAt && s.t + rss.t0 <= cutEnd).length;

      await restoreLink(cut, broker);
      const restoredAt = Date.now();
      await waitUntil(`${cut} back to connected after the link returned`, async () => (await agentHealth(httpUrl)).mode === 'connected', 120_000, 250).catch(async (err: unknown) => {
        throw new Error(`${String(err)}; health: ${JSON.stringify(await agentHealth(httpUrl).catch((e: unknown) => String(e)))}; logs in ${cluster.dir}`);
      });
      const reconnectMs = Date.now() - restoredAt;

      const w = await settle(workload, writes, deltas);
      rss.stop();
      const run = await convergeAndCheck(agents, { writes, deltas, initial, timeoutMs: CONVERGE_TIMEOUT_MS, tag });
      const figures = {
        broker, seed, cutRegion: cut, cutS: CUT_MS / 1000, autonomousAfterMs: detectedMs, samplesDuringCut: samples,
        cutLsn, firstUnconfirmedCommit: firstUnconfirmed, slotConfirmedMaxDuringCut: slotMax, walAtCutEnd: slotAtEnd.current, retainedWalMetricBytes: { first: retainedFirst, last: retainedLast },
        pendingTransactionsAtCutEnd: cutHealth.pendingTransactions,
        newestLocalVersion: { atCut: localBefore, atCutEnd: localAfter },
        rssMb: { peakBeforeCut: Math.round(rssAtCut / 1048576), peakOverCut: Math.round(peakMb), samplesOverCut: cutSamples, peakWholeRun: Math.round(rss.peakBytes(cut) / 1048576), curvePer10s: rss.curve(cut) },
        reconnectMs, convergeMs: run.convergence.ms, transactions: w.committed, writes: w.writes.length,
      };
      console.log(`[${tag}] figures ${JSON.stringify(figures)}`);

      expect(problems, 'invariants during the cut').toEqual([]);
      // The cut really held messages back, and the slot stayed behind the first of them.
      expect(firstUnconfirmed, 'publishes failed during the cut').toBeDefined();
      expect(samples).toBeGreaterThanOrEqual(Math.floor(CUT_MS / (SAMPLE_EVERY_MS + 2000)));
      // Local duties: local writes kept committing (newer local versions), the slot metric tracked the retained WAL.
      expect(localAfter > localBefore, `local writes in ${cut} during the cut (${localBefore} -> ${localAfter})`).toBe(true);
      expect(retainedLast, 'retained WAL metric grew while the slot was held').toBeGreaterThan(retainedFirst ?? 0);
      expect(cutSamples, 'RSS samples over the cut').toBeGreaterThan(0);
      expect(peakMb, `agent RSS over the cut (MB), bound ${RSS_BOUND_MB}`).toBeLessThan(RSS_BOUND_MB);
      expect(rss.peakBytes(cut) / 1048576, `agent RSS over the whole run incl. catch-up (MB), bound ${RSS_BOUND_MB}`).toBeLessThan(RSS_BOUND_MB);
      expect(run.convergence.why).toBe('');
      expect(run.convergence.converged).toBe(true);
      expect(describeViolations(run.violations), `seed ${seed}`).toEqual([]);
    } finally {
      await restoreLink(cut, broker).catch(() => undefined);
      rss.stop();
      await settle(workload, writes, deltas).catch(() => undefined);
    }
  }, CUT_MS + 900_000);

  it(`a broker restart: every agent goes autonomous, holds its slot and catches up by itself`, async () => {
    const seed = (seedFromEnv() + 1) >>> 0;
    console.log(`[${tag}] broker restart: seed=${seed} down for ${BROKER_DOWN_MS / 1000} s`);
    const rss = new RssSampler(cluster).start();
    const workload = runWorkload({ targets: agents, seed, durationMs: WARMUP_MS + BROKER_DOWN_MS + AFTER_MS, writersPerRegion: WRITERS, products: PRODUCTS, log: (l) => console.log(`[${tag}] ${l}`) });
    workload.catch(() => undefined);
    const problems: string[] = [];
    let restarted = false;
    try {
      await sleep(WARMUP_MS);
      await stopBroker(broker);
      const downAt = Date.now();
      const stopLsn: Record<string, string> = {};
      for (const r of cluster.regions) stopLsn[r] = await currentWalLsn(cluster, r);
      await waitUntil('every agent autonomous with the broker down', async () => {
        for (const a of agents) if ((await agentHealth(a.httpUrl)).mode !== 'autonomous') return false;
        return true;
      }, 60_000, 250);
      const detectedMs = Date.now() - downAt;
      let samples = 0;
      let startedByOther = false;
      while (Date.now() < downAt + BROKER_DOWN_MS) {
        // The stack is shared: another test run's up() may start the broker again. The
        // window ends there (the restart happened); only samples taken while it was
        // certainly down count.
        if (brokerRunning(broker)) {
          startedByOther = true;
          console.log(`[${tag}] ${broker} was started again by another process after ${Date.now() - downAt} ms`);
          break;
        }
        samples += 1;
        for (const a of agents) {
          const h = await agentHealth(a.httpUrl);
          if (h.mode !== 'autonomous' && !brokerRunning(broker)) problems.push(`${a.region} t+${Date.now() - downAt} ms: mode ${h.mode} with ${broker} down`);
          const slot = await slotPosition(cluster, a.region);
          // As in the cut test: the slot never passes a local transaction whose publish the
          // broker did not confirm (the first one logged as failed since the stop). Empty
          // transactions committed after the stop (remote changes applied from messages
          // fetched before it, idle heartbeats) need no broker and may be acknowledged, so
          // the WAL position at the stop is no bound by itself.
          const handle = cluster.agents.get(a.region)!;
          const failed = failedPublishLsns(handle.logPath, handle.process!.pid!, downAt - 1000);
          const bound = failed[0]; // the lowest logged so far
          if (bound !== undefined && lsnToBigInt(slot.confirmed) > lsnToBigInt(bound) && !brokerRunning(broker)) problems.push(`${a.region} t+${Date.now() - downAt} ms: slot confirmed ${slot.confirmed} past ${bound}, a transaction whose publish the broker never confirmed (WAL at the stop: ${stopLsn[a.region]})`);
        }
        await sleep(SAMPLE_EVERY_MS);
      }
      await startBroker(broker);
      restarted = true;
      const upAt = Date.now();
      await waitUntil('every agent connected again', async () => {
        for (const a of agents) if ((await agentHealth(a.httpUrl)).mode !== 'connected') return false;
        return true;
      }, 180_000, 250).catch(async (err: unknown) => {
        // Say which agent stayed away and what its bus last reported (logs in cluster.dir).
        const seen = await Promise.all(agents.map(async (a) => ({ region: a.region, health: await agentHealth(a.httpUrl).catch((e: unknown) => String(e)) })));
        throw new Error(`${String(err)}; agents: ${JSON.stringify(seen)}; logs in ${cluster.dir}`);
      });
      const reconnectMs = Date.now() - upAt;
      const w = await settle(workload, writes, deltas);
      rss.stop();
      const run = await convergeAndCheck(agents, { writes, deltas, initial, timeoutMs: CONVERGE_TIMEOUT_MS, tag: `${tag} restart` });
      console.log(`[${tag}] broker restart figures ${JSON.stringify({ broker, seed, downS: BROKER_DOWN_MS / 1000, startedByOther, autonomousAfterMs: detectedMs, samples, reconnectMs, convergeMs: run.convergence.ms, transactions: w.committed, rss: rss.summary() })}`);
      expect(problems).toEqual([]);
      for (const r of cluster.regions) expect(rss.peakBytes(r) / 1048576, `${r} RSS (MB)`).toBeLessThan(RSS_BOUND_MB);
      expect(run.convergence.why).toBe('');
      expect(describeViolations(run.violations), `seed ${seed}`).toEqual([]);
    } finally {
      if (!restarted) await startBroker(broker).catch((err: unknown) => console.error(`[${tag}] could not restart ${broker}: ${String(err)}`));
      rss.stop();
      await settle(workload, writes, deltas).catch(() => undefined);
    }
  }, BROKER_DOWN_MS + 900_000);

  it(`replies from the broker lost on one region's link: every transaction still reaches every region`, async () => {
    const lossy = cluster.regions[1]!;
    const seed = (seedFromEnv() + 2) >>> 0;
    console.log(`[${tag}] lost replies: seed=${seed} region=${lossy} for ${REPLY_LOSS_MS / 1000} s; logs in ${cluster.dir}`);
    const workload = runWorkload({ targets: agents, seed, durationMs: WARMUP_MS + REPLY_LOSS_MS + AFTER_MS, writersPerRegion: WRITERS, products: PRODUCTS, log: (l) => console.log(`[${tag}] ${l}`) });
    workload.catch(() => undefined);
    const handle = cluster.agents.get(lossy)!;
    try {
      await sleep(WARMUP_MS);
      const lossAt = Date.now();
      // Requests still reach the broker, which stores the publishes; its replies never come
      // back and each connection is closed after half a second of silence.
      await dropReplies(lossy, broker, 500);
      try {
        await sleep(REPLY_LOSS_MS);
      } finally {
        await restoreReplies(lossy, broker);
      }
      const failed = failedPublishLsns(handle.logPath, handle.process!.pid!, lossAt - 1000);
      await waitUntil(`${lossy} connected again`, async () => (await agentHealth(handle.httpUrl)).mode === 'connected', 120_000, 250);
      const w = await settle(workload, writes, deltas);
      // Convergence includes the counters: each region applied at least as many transactions
      // from each other region as that region captured. A publish confirmed but not stored
      // shows there (its rows may well be overwritten later, passing the data checks).
      const run = await convergeAndCheck(agents, { writes, deltas, initial, timeoutMs: CONVERGE_TIMEOUT_MS, tag: `${tag} lost replies` });
      console.log(`[${tag}] lost replies figures ${JSON.stringify({ broker, seed, region: lossy, lossS: REPLY_LOSS_MS / 1000, failedPublishes: failed.length, convergeMs: run.convergence.ms, transactions: w.committed })}`);
      // The fault was real: publishes from the region failed while its replies were lost.
      expect(failed.length, 'publishes that failed while replies were lost').toBeGreaterThan(0);
      expect(run.convergence.why).toBe('');
      expect(describeViolations(run.violations), `seed ${seed}`).toEqual([]);
    } finally {
      await restoreReplies(lossy, broker).catch(() => undefined);
      await settle(workload, writes, deltas).catch(() => undefined);
    }
  }, REPLY_LOSS_MS + 900_000);
});

/**
 * Awaits a workload once and records its writes in the cluster-wide lists (also when the
 * test fails half-way, so a later test's counter and no-loss checks still see every write).
 */
const settled = new WeakMap<Promise<WorkloadResult>, Promise<WorkloadResult>>();
function settle(w: Promise<WorkloadResult>, writes: RecordedWrite[], deltas: CounterDelta[]): Promise<WorkloadResult> {
  let p = settled.get(w);
  if (!p) {
    p = w.then((r) => {
      // Not push(...list): a long workload records more writes than a call has arguments.
      for (const x of r.writes) writes.push(x);
      for (const x of r.deltas) deltas.push(x);
      return r;
    });
    settled.set(w, p);
  }
  return p;
}

/** Newest version (HLC) a local write of `region` gave any row there. */
async function newestLocalVersion(c: Cluster, region: string): Promise<string> {
  return (await c.query<{ h: string | null }>(region, 'select max(hlc) as h from regionsync.row_versions where region = $1', [region]))[0]!.h ?? '';
}
