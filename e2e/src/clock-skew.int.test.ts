// Issue 5.3: one region's PostgreSQL and agent run under libfaketime. Behind: a write made
// after observing another still wins everywhere (HLC, not wall clock). Ahead beyond the
// configured maximum: the other agents refuse that source and alarm instead of mis-ordering,
// and accept its changes once the clocks agree again.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveLayout, startScratchPostgres, stopScratchPostgres } from '@regionsync/stack';
import { Cluster, waitUntil } from '@regionsync/sandbox';

const US = 'us-east-1';
const EU = 'eu-west-1';
const SKEWED = 'ap-southeast-1';
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

describe.each(['nats', 'kafka'] as const)('clock skew on %s', (broker) => {
  const layout = resolveLayout();
  const dir = join(layout.stateDir, 'skew', broker);
  const clockFile = join(dir, 'offset');
  const setOffset = (o: string) => writeFileSync(clockFile, `${o}\n`, { mode: 0o644 });
  const fake = { LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
  let cluster: Cluster | undefined;

  afterAll(async () => {
    await cluster?.stop();
    await stopScratchPostgres(layout, `skew-${broker}`);
  });

  it('orders by causality when behind, refuses and alarms when ahead beyond the limit', async () => {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    setOffset('-8s');
    const url = await startScratchPostgres(layout, `skew-${broker}`, layout.ports.postgres(0) + 90 + (broker === 'kafka' ? 1 : 0), fake);
    cluster = await Cluster.create({
      database: `e2e_skew_${broker}`,
      broker,
      regions: [US, EU, SKEWED],
      extraRegions: { [SKEWED]: { databaseUrl: url } },
      agentConfig: (r) => ({ replication: { maxClockSkewMs: r === SKEWED ? 60_000 : 5_000 } }),
      agentEnv: (r) => (r === SKEWED ? fake : {}),
    });
    await cluster.startAll();
    const c = cluster;
    const [{ d }] = await c.query<{ d: number }>(SKEWED, 'select extract(epoch from clock_timestamp())::float8 as d');
    expect(Date.now() / 1000 - d!).toBeGreaterThan(6); // the skewed server really is behind

    // Behind: us-east-1 writes, the skewed region observes it and writes after it.
    await c.query(US, `insert into products values (1, 'from-us', 100, 10, now())`);
    await waitUntil('skewed region saw the write', async () => (await c.query(SKEWED, 'select 1 from products where id = 1')).length === 1, 60_000);
    await c.query(SKEWED, `update products set name = 'from-skewed-after' where id = 1`);
    for (const r of [US, EU, SKEWED]) {
      await waitUntil(`later write wins in ${r}`, async () => (await c.query<{ name: string }>(r, 'select name from products where id = 1'))[0]?.name === 'from-skewed-after', 60_000);
    }
    const versions = await c.query<{ hlc: string; region: string }>(US, `select hlc, region from regionsync.row_versions where table_name = 'public.products' and pk = '1'`);
    expect(versions[0]!.region).toBe(SKEWED);

    // Ahead by more than the 5 s the other regions accept: refused and alarmed, never applied early.
    setOffset('+8s');
    await c.query(SKEWED, `insert into products values (2, 'from-the-future', 100, 10, now())`);
    for (const r of [US, EU]) {
      await waitUntil(`${r} refuses and alarms`, async () => {
        const h = (await (await fetch(`${c.agents.get(r)!.httpUrl}/healthz`)).json()) as { mode: string; alarms: string[] };
        return h.mode === 'refusing' && h.alarms.some((a) => a.startsWith(`clock-skew:${SKEWED}`));
      }, 60_000);
      const metrics = await (await fetch(`${c.agents.get(r)!.httpUrl}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`regionsync_clock_skew_refusals_total\\{[^}]*source="${SKEWED}"[^}]*\\} [1-9]`));
      expect((await c.query(r, 'select 1 from products where id = 2')).length).toBe(0);
    }
    const log = readFileSync(c.agents.get(US)!.logPath, 'utf8');
    expect(log).toMatch(/RS_REPLICATION_CLOCK_SKEW|ms ahead of the local clock/);

    // Clocks agree again: the refused change is applied (it was only held back) and the alarm clears.
    setOffset('+0s');
    for (const r of [US, EU]) {
      await waitUntil(`${r} accepts the change once the clocks agree`, async () => (await c.query(r, 'select 1 from products where id = 2')).length === 1, 90_000);
      await waitUntil(`${r} alarm cleared`, async () => ((await (await fetch(`${c.agents.get(r)!.httpUrl}/healthz`)).json()) as { mode: string }).mode === 'connected', 30_000);
    }
  }, 600_000);
});
