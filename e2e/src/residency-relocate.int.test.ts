// Issue 6 point 4 (`relocate` mode for misplaced rows), on the sandbox with the demo policy
// switched to `misplaced: relocate`, once per broker:
//  - an EU user written in us-east-1 (outside its home) reaches both EU regions and, once
//    the bus confirmed the forward, is removed from us-east-1 without echo (the EU copies
//    stay); us-east-1 audits it as `relocated` / written-outside-home and counts it;
//  - a US user written in us-east-1 at the same time is not touched;
//  - a later global write from the EU reaching us-east-1 is the barrier after which the
//    relocated user has not come back there.
// Assertion messages carry counts and region names only, never row values.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_POLICY_PATH } from '@regionsync/gdpr';
import { findRepoRoot } from '@regionsync/stack';
import { Cluster, waitUntil, type Broker } from '@regionsync/sandbox';

const US = 'us-east-1';
const EU1 = 'eu-west-1';
const EU2 = 'eu-central-1';
const REGIONS = [US, EU1, EU2];
const TIMEOUT_MS = Number(process.env.E2E_CONVERGE_TIMEOUT_S ?? 240) * 1000;

async function has(c: Cluster, region: string, id: string): Promise<{ home: string } | undefined> {
  const r = await c.query<{ home: string }>(region, 'select home_region as home from users where id = $1', [id]);
  return r[0];
}

async function audited(c: Cluster, region: string, reason: string, destination: string): Promise<number> {
  const r = await c.query<{ n: number }>(region, `select count(*)::int as n from regionsync.audit_log where kind = 'relocated' and reason = $1 and destination = $2`, [reason, destination]);
  return r[0]!.n;
}

describe.each(['nats', 'kafka'] as Broker[])('misplaced rows under relocate on %s', (broker) => {
  let cluster: Cluster;

  beforeAll(async () => {
    const dir = join(findRepoRoot(), '.stack', 'sandbox', `e2e_relocate_${broker}`);
    mkdirSync(dir, { recursive: true });
    const policyFile = join(dir, 'relocate-policy.yaml');
    const demo = readFileSync(DEMO_POLICY_PATH, 'utf8');
    const relocate = demo.replace(/^(\s*)misplaced: report\b/m, '$1misplaced: relocate').replace(/^(\s*)moved: report\b/m, '$1moved: relocate');
    expect(relocate, 'demo policy defaults rewritten').toMatch(/misplaced: relocate[^]*moved: relocate/);
    writeFileSync(policyFile, relocate);
    cluster = await Cluster.create({ database: `e2e_relocate_${broker}`, broker, regions: REGIONS, policyFile });
    await cluster.startAll();
  }, 900_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 300_000);

  it('forwards a misplaced row home and removes the stray copy without echo', async () => {
    const c = cluster;
    // A US user written in us-east-1 (stays), and an EU user written there (misplaced).
    const local = randomUUID();
    const stray = randomUUID();
    await c.query(US, 'insert into users values ($1, $2, $3, $4, now())', [local, US, `local.${local}@example.test`, 'Local User']);
    await c.query(US, 'insert into users values ($1, $2, $3, $4, now())', [stray, EU1, `stray.${stray}@example.test`, 'Stray User']);
    await waitUntil('misplaced row forwarded to both EU regions and removed from us-east-1', async () => {
      return (await has(c, EU1, stray)) !== undefined && (await has(c, EU2, stray)) !== undefined && (await has(c, US, stray)) === undefined;
    }, TIMEOUT_MS);
    await waitUntil('US user everywhere', async () => (await Promise.all(REGIONS.map((r) => has(c, r, local)))).every((x) => x !== undefined), TIMEOUT_MS);

    // Barrier: a global write from eu-west-1 reaching us-east-1 comes after everything above.
    const barrier = 900_000 + Math.floor(Math.random() * 1000);
    await c.query(EU1, 'insert into products values ($1, $2, 1, 1, now())', [barrier, 'barrier']);
    await waitUntil('barrier in us-east-1', async () => (await c.query(US, 'select 1 from products where id = $1', [barrier])).length === 1, TIMEOUT_MS);
    expect(await has(c, US, stray), 'misplaced row back in us-east-1').toBeUndefined();
    expect((await has(c, US, local))?.home, 'US user in us-east-1').toBe(US);
    for (const r of [EU1, EU2]) expect((await has(c, r, stray))?.home, `${r} relocated row`).toBe(EU1);
    expect(await audited(c, US, 'written-outside-home', US), 'us-east-1 relocated entries').toBe(1);
    const text = await (await fetch(`${c.agents.get(US)!.httpUrl}/metrics`)).text();
    expect(text.split('\n').filter((l) => l.startsWith('regionsync_gdpr_misplaced_total{') && l.includes('table="public.users"') && l.includes('reason="written-outside-home"')).map((l) => l.split(' ').at(-1)), 'misplaced metric').toEqual(['1']);
  }, 900_000);

  // Two US users move home to the EU: one updated in eu-west-1 (us-east-1's copy is sent a
  // delete instead of the withheld update), one updated in us-east-1 itself (forwarded to
  // the EU, then the local copy purged by the relocator). Neither echoes back; us-east-1
  // refuses nothing (the delete carries the old home, which may live there).
  it('relocates rows whose home moved to another jurisdiction', async () => {
    const c = cluster;
    const remote = randomUUID();
    const local = randomUUID();
    for (const id of [remote, local]) await c.query(US, 'insert into users values ($1, $2, $3, $4, now())', [id, US, `mover.${id}@example.test`, 'Moving User']);
    await waitUntil('US users everywhere', async () => (await Promise.all(REGIONS.flatMap((r) => [has(c, r, remote), has(c, r, local)]))).every((x) => x?.home === US), TIMEOUT_MS);
    await c.query(EU1, 'update users set home_region = $2 where id = $1', [remote, EU1]);
    await c.query(US, 'update users set home_region = $2 where id = $1', [local, EU2]);
    await waitUntil('moved rows in both EU regions under their new home and gone from us-east-1', async () => {
      const eu = await Promise.all([EU1, EU2].flatMap((r) => [has(c, r, remote), has(c, r, local)]));
      return eu.filter((x, i) => x?.home === (i % 2 === 0 ? EU1 : EU2)).length === 4 && (await has(c, US, remote)) === undefined && (await has(c, US, local)) === undefined;
    }, TIMEOUT_MS);
    const barrier = 910_000 + Math.floor(Math.random() * 1000);
    await c.query(EU1, 'insert into products values ($1, $2, 1, 1, now())', [barrier, 'barrier']);
    await waitUntil('barrier in us-east-1', async () => (await c.query(US, 'select 1 from products where id = $1', [barrier])).length === 1, TIMEOUT_MS);
    expect(await has(c, US, remote), 'moved row (updated in the EU) back in us-east-1').toBeUndefined();
    expect(await has(c, US, local), 'moved row (updated in us-east-1) back in us-east-1').toBeUndefined();
    expect(await audited(c, EU1, 'home-moved', US), 'eu-west-1 relocated entries for us-east-1').toBe(1);
    expect(await audited(c, US, 'home-moved', US), 'us-east-1 relocated entries (local purge)').toBe(1);
    const refused = await c.query<{ n: number }>(US, `select count(*)::int as n from regionsync.audit_log where kind = 'refused'`);
    expect(refused[0]!.n, 'us-east-1 refused entries').toBe(0);
    for (const r of REGIONS) {
      const text = await (await fetch(`${c.agents.get(r)!.httpUrl}/metrics`)).text();
      const v = text.split('\n').filter((l) => l.startsWith('regionsync_gdpr_violations_total{')).map((l) => Number(l.split(' ').at(-1)));
      expect(v.reduce((a, b) => a + b, 0), `${r} residency violations`).toBe(0);
    }
  }, 900_000);
});
