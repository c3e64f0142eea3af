// A region's own PostgreSQL crashes under load, on NATS and on Kafka (3 regions, the real
// stack). Every region writes throughout; the region's server is stopped in immediate mode
// (sessions cut, no checkpoint: crash recovery on start) for E2E_DB_DOWN_S (default 15 s)
// and started again, then crashed once more while the agent catches up and started at
// once. Its agent must ride it out: the process stays up, reports the database
// unreachable in /healthz and not ready in /readyz while it is down (a load balancer or an
// operator sees the region is not being served), and comes back by itself. Afterwards:
// convergence, no lost write, no resurrection, exact counters (a transaction captured but
// lost with the crash, or applied twice after it, shows there), and every region applied
// every transaction every other region captured.
//
// The crashed region's writers reconnect; a COMMIT that got no answer is resolved with
// txid_status once the server is back and recorded only if it committed.
//
// Reproduce: E2E_SEED=<printed seed> E2E_DB_DOWN_S=15 npx vitest run -c vitest.int.config.ts db-restart
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crashDatabase, startDatabase } from '@regionsync/stack';
import { waitUntil, type Broker, type Cluster } from '@regionsync/sandbox';
import type { AgentEndpoint } from './checkers.js';
import { agentHealth, convergeAndCheck, describeViolations, envNumber, seededCluster } from './scenario-support.js';
import { runWorkload, seedFromEnv } from './workload.js';

const DB_DOWN_MS = envNumber('E2E_DB_DOWN_S', 15) * 1000;
const WARMUP_MS = 5000;
const AFTER_MS = 10_000;
const WRITERS = envNumber('E2E_WRITERS', 1);
const CONVERGE_TIMEOUT_MS = envNumber('E2E_CONVERGE_TIMEOUT_S', 300) * 1000;
const PRODUCTS = 20;
const SAMPLE_EVERY_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readyStatus(httpUrl: string): Promise<number> {
  return (await fetch(`${httpUrl}/readyz`, { signal: AbortSignal.timeout(5000) })).status;
}

describe.each(['nats', 'kafka'] as Broker[])('database crash and restart on %s (3 regions)', (broker) => {
  let cluster: Cluster;
  let agents: AgentEndpoint[] = [];
  let initial = new Map<number, bigint>();
  const tag = `db-restart ${broker}`;

  beforeAll(async () => {
    ({ cluster, agents, initial } = await seededCluster({ name: 'dbr', broker, products: PRODUCTS }));
  }, 900_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 300_000);

  it(`a region's database crashes under load: its agent rides it out, says so, and nothing is lost or applied twice`, async () => {
    const crashed = cluster.regions[1]!;
    const seed = (seedFromEnv() + 3) >>> 0;
    console.log(`[${tag}] seed=${seed} crash=${crashed} down for ${DB_DOWN_MS / 1000} s; logs in ${cluster.dir}`);
    const handle = cluster.agents.get(crashed)!;
    const pid = handle.process!.pid!;
    const workload = runWorkload({ targets: agents, seed, durationMs: WARMUP_MS + DB_DOWN_MS + AFTER_MS, writersPerRegion: WRITERS, products: PRODUCTS, rideOutRestarts: true, log: (l) => console.log(`[${tag}] ${l}`) });
    workload.catch(() => undefined);
    const problems: string[] = [];
    let restarted = false;
    try {
      await sleep(WARMUP_MS);
      expect(await readyStatus(handle.httpUrl), `${crashed} ready before the crash`).toBe(200);
      await crashDatabase(crashed);
      const downAt = Date.now();
      await waitUntil(`${crashed} agent reports its database unreachable`, async () => (await agentHealth(handle.httpUrl)).database?.connected === false, 30_000, 250);
      const detectedMs = Date.now() - downAt;
      let samples = 0;
      while (Date.now() < downAt + DB_DOWN_MS) {
        samples += 1;
        if (handle.process!.exitCode !== null) {
          problems.push(`t+${Date.now() - downAt} ms: agent exited with ${handle.process!.exitCode}`);
          break;
        }
        const h = await agentHealth(handle.httpUrl).catch((err: unknown) => String(err));
        if (typeof h === 'string') problems.push(`t+${Date.now() - downAt} ms: /healthz: ${h}`);
        else if (h.database?.connected !== false) problems.push(`t+${Date.now() - downAt} ms: /healthz says the database is reachable while it is down`);
        const ready = await readyStatus(handle.httpUrl).catch(() => -1);
        if (ready !== 503) problems.push(`t+${Date.now() - downAt} ms: /readyz answered ${ready} while the database is down`);
        await sleep(SAMPLE_EVERY_MS);
      }
      await startDatabase(crashed);
      restarted = true;
      const upAt = Date.now();
      await waitUntil(`${crashed} agent ready again`, async () => (await readyStatus(handle.httpUrl)) === 200 && (await agentHealth(handle.httpUrl)).database?.connected === true, 120_000, 250);
      const recoveredMs = Date.now() - upAt;
      // A second crash while the agent works through what piled up in the first (apply
      // transactions and slot acknowledgements in flight), back at once.
      await sleep(500);
      await crashDatabase(crashed);
      await startDatabase(crashed);
      await waitUntil(`${crashed} agent ready again after the second crash`, async () => (await readyStatus(handle.httpUrl)) === 200 && (await agentHealth(handle.httpUrl)).database?.connected === true, 120_000, 250);
      const w = await workload;
      const run = await convergeAndCheck(agents, { writes: w.writes, deltas: w.deltas, initial, timeoutMs: CONVERGE_TIMEOUT_MS, tag });
      console.log(`[${tag}] figures ${JSON.stringify({ broker, seed, region: crashed, downS: DB_DOWN_MS / 1000, detectedMs, samples, recoveredMs, transactions: w.committed, writerReconnects: w.reconnects, inDoubt: w.inDoubt, convergeMs: run.convergence.ms })}`);
      expect(problems).toEqual([]);
      expect(handle.process!.pid, 'the same agent process throughout').toBe(pid);
      expect(handle.process!.exitCode).toBeNull();
      // The fault was real: the region's writers lost their connections.
      expect(w.reconnects, 'writer reconnects').toBeGreaterThan(0);
      expect(run.convergence.why, `seed ${seed}`).toBe('');
      expect(run.convergence.converged).toBe(true);
      expect(describeViolations(run.violations), `seed ${seed}`).toEqual([]);
    } finally {
      if (!restarted) await startDatabase(crashed).catch((err: unknown) => console.error(`[${tag}] could not start PostgreSQL ${crashed} again: ${String(err)}`));
      await workload.catch(() => undefined);
    }
  }, DB_DOWN_MS + 900_000);
});
