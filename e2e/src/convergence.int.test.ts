// Issue 4 point 7: three regions, once on NATS and once on Kafka, a concurrent random
// workload from every region for a fixed time; then every region holds the same rows
// (checksums), no acknowledged write is lost, no deleted row comes back, and every counter
// equals its initial value plus the sum of all its increments.
//
// Reproduce a run: E2E_SEED=<printed seed> E2E_DURATION_S=<s> npx vitest run -c vitest.int.config.ts
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, waitUntil, type Broker } from '@regionsync/sandbox';
import { checkCounters, checkNoLostWrite, checkNoResurrection, figures, loadRegionState, waitForConvergence, type AgentEndpoint } from './checkers.js';
import { durationFromEnv, runWorkload, seedFromEnv, seedProducts } from './workload.js';

const WRITERS_PER_REGION = Number(process.env.E2E_WRITERS ?? 2);
const PRODUCTS = 20;
const INITIAL_STOCK = 1000;
// INSERT ... ON CONFLICT DO NOTHING is part of the mix (E2E_INSERT_IGNORE=0 leaves it out).
const INSERT_IGNORE = process.env.E2E_INSERT_IGNORE !== '0';
const CONVERGE_TIMEOUT_MS = Number(process.env.E2E_CONVERGE_TIMEOUT_S ?? 240) * 1000;

describe.each(['nats', 'kafka'] as Broker[])('convergence under a concurrent random workload on %s (3 regions)', (broker) => {
  let cluster: Cluster | undefined;
  let agents: AgentEndpoint[] = [];

  beforeAll(async () => {
    cluster = await Cluster.create({ database: `e2e_conv_${broker}`, broker });
    await cluster.startAll();
    agents = cluster.regions.map((r) => ({ region: r, url: cluster!.dbUrl(r), httpUrl: cluster!.agents.get(r)!.httpUrl }));
  }, 900_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 300_000);

  it('converges with no lost write, no resurrection and exact counters', async () => {
    const c = cluster!;
    const seed = seedFromEnv();
    const durationMs = durationFromEnv();
    console.log(`[e2e ${broker}] seed=${seed} (rerun with E2E_SEED=${seed}); logs in ${c.dir}`);

    // Products are inserted once, after the agents run, so the initial stock is one
    // region's counter contribution like any other; wait until every region has them.
    await seedProducts(agents[0]!.url, PRODUCTS, INITIAL_STOCK);
    await waitUntil('seeded products in every region', async () => {
      for (const a of agents) {
        const r = await c.query<{ n: number }>(a.region, 'select count(*)::int as n from public.products where stock = $1', [INITIAL_STOCK]);
        if (r[0]!.n !== PRODUCTS) return false;
      }
      return true;
    }, 120_000);
    const initial = new Map(Array.from({ length: PRODUCTS }, (_, i) => [i + 1, BigInt(INITIAL_STOCK)] as const));

    const w = await runWorkload({ targets: agents, seed, durationMs, writersPerRegion: WRITERS_PER_REGION, products: PRODUCTS, insertIgnore: INSERT_IGNORE, log: (l) => console.log(`[e2e ${broker}] ${l}`) });
    console.log(`[e2e ${broker}] workload done: ${w.committed} transactions, ${w.writes.length} writes, ${w.deltas.length} increments, rolled back ${JSON.stringify(w.rolledBack)}`);

    const conv = await waitForConvergence(agents, CONVERGE_TIMEOUT_MS);
    console.log(`[e2e ${broker}] convergence: ${conv.converged ? 'yes' : 'NO'} after ${conv.ms} ms (${conv.polls} polls)${conv.why ? `: ${conv.why}` : ''}`);
    console.log(`[e2e ${broker}] agents: ${JSON.stringify(conv.progress)}`);

    const states = [];
    for (const a of agents) states.push(await loadRegionState(a));
    const violations = [...checkNoLostWrite(w.writes, states), ...checkNoResurrection(states), ...checkCounters(initial, w.deltas, states)];
    const f = figures({ broker, seed, durationMs: w.durationMs, committed: w.committed, rolledBack: w.rolledBack, rowsPerTx: w.rowsPerTx, writes: w.writes, deltas: w.deltas, convergence: conv, states, violations });
    console.log(`[e2e ${broker}] figures ${JSON.stringify(f, null, 2)}`);
    if (violations.length > 0) {
      const byCheck: Record<string, number> = {};
      for (const v of violations) byCheck[`${v.check}@${v.region}`] = (byCheck[`${v.check}@${v.region}`] ?? 0) + 1;
      console.log(`[e2e ${broker}] ${violations.length} violations (seed ${seed}): ${JSON.stringify(byCheck)}\n${violations.slice(0, 30).map((v) => `  ${v.check} ${v.region}: ${v.detail}`).join('\n')}`);
    }

    expect(w.committed, 'the workload committed transactions').toBeGreaterThan(0);
    expect(new Set(w.writes.map((x) => x.op)), 'every kind of write happened').toEqual(new Set(['insert', 'update', 'delete', 'upsert', 'increment', ...(INSERT_IGNORE ? ['insert-ignore'] : [])]));
    expect(conv.why, `regions did not converge within ${CONVERGE_TIMEOUT_MS / 1000} s (seed ${seed})`).toBe('');
    expect(conv.converged).toBe(true);
    expect(violations.slice(0, 20).map((v) => `${v.check} ${v.region}: ${v.detail}`), `seed ${seed}`).toEqual([]);
  }, 600_000);
});
