// Issue 6 point 4 (`report` mode), on the sandbox with the demo policy (misplaced: report),
// once per broker: EU users written in us-east-1 (outside their home), users whose home
// is not a policy region written in eu-west-1, and US users written in eu-west-1 (an open
// jurisdiction's rows may live anywhere: not misplaced). Under `report` nothing moves: the
// stray copy stays where it was written, egress still sends each row only where it may
// live, and each misplaced row gets one audit entry (kind withheld, reason
// written-outside-home / unknown-home-region) and one count in
// regionsync_gdpr_misplaced_total. Assertion messages carry counts only, never values.
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_POLICY_PATH } from '@regionsync/gdpr';
import { Cluster, waitUntil, type Broker } from '@regionsync/sandbox';

const US = 'us-east-1';
const REGIONS = [US, 'eu-west-1', 'eu-central-1'];
const TIMEOUT_MS = Number(process.env.E2E_CONVERGE_TIMEOUT_S ?? 240) * 1000;

interface User { id: string; home: string; email: string; writtenIn: string; kind: 'eu-in-us' | 'unknown-home' | 'us-in-eu' | 'eu-at-home' }

/** Where each kind of row must end up and whether its PII is intact there (undefined: absent). */
const EXPECT: Record<User['kind'], Record<string, 'pii' | 'redacted' | undefined>> = {
  'eu-in-us': { [US]: 'pii', 'eu-west-1': 'pii', 'eu-central-1': 'pii' },
  'unknown-home': { [US]: undefined, 'eu-west-1': 'pii', 'eu-central-1': 'pii' },
  'us-in-eu': { [US]: 'pii', 'eu-west-1': 'pii', 'eu-central-1': 'redacted' },
  'eu-at-home': { [US]: undefined, 'eu-west-1': 'pii', 'eu-central-1': 'pii' },
};

async function metric(cluster: Cluster, region: string, reason: string): Promise<number> {
  const text = await (await fetch(`${cluster.agents.get(region)!.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('regionsync_gdpr_misplaced_total{') && l.includes('table="public.users"') && l.includes(`reason="${reason}"`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

async function ledger(cluster: Cluster, region: string): Promise<Record<string, number>> {
  const rows = await cluster.query<{ k: string; n: string }>(region, `select kind || '/' || reason || '/' || coalesce(destination, '-') as k, count(*) as n from regionsync.audit_log group by 1 order by 1`);
  return Object.fromEntries(rows.map((r) => [r.k, Number(r.n)]));
}

describe.each(['nats', 'kafka'] as Broker[])('misplaced rows under report on %s', (broker) => {
  let cluster: Cluster | undefined;

  beforeAll(async () => {
    cluster = await Cluster.create({ database: `e2e_misplaced_${broker}`, broker, regions: REGIONS, policyFile: DEMO_POLICY_PATH });
    await cluster.startAll();
  }, 900_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 300_000);

  it('keeps stray copies in place, forwards only where allowed, audits and counts each misplaced row once', async () => {
    const c = cluster!;
    const run = randomBytes(4).toString('hex');
    const plan: [User['kind'], string, string, number][] = [
      ['eu-in-us', US, 'eu-west-1', 4],
      ['unknown-home', 'eu-west-1', 'mars-1', 3],
      ['us-in-eu', 'eu-west-1', US, 2],
      ['eu-at-home', 'eu-central-1', 'eu-central-1', 1],
    ];
    const users: User[] = [];
    for (const [kind, writtenIn, home, n] of plan) {
      const db = new pg.Client({ connectionString: c.dbUrl(writtenIn) });
      await db.connect();
      try {
        for (let i = 0; i < n; i++) {
          const u: User = { id: randomUUID(), home, email: `canary.${run}.${kind}.${i}@example.test`, writtenIn, kind };
          await db.query('insert into users values ($1, $2, $3, $4, now())', [u.id, u.home, u.email, `Canary ${run} ${i}`]);
          users.push(u);
        }
      } finally {
        await db.end();
      }
    }

    const placement = async (): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      for (const r of REGIONS) {
        const rows = new Map((await c.query<{ id: string; email: string | null }>(r, 'select id, email from users')).map((x) => [x.id, x.email]));
        for (const u of users) {
          const want = EXPECT[u.kind][r];
          const got = rows.get(u.id);
          const ok = want === undefined ? !rows.has(u.id) : want === 'pii' ? got === u.email : rows.has(u.id) && got === null;
          if (!ok) out[`${r}: ${u.kind} ${want ?? 'absent'}`] = (out[`${r}: ${u.kind} ${want ?? 'absent'}`] ?? 0) + 1;
        }
      }
      return out;
    };
    const expected: Record<string, Record<string, number>> = {
      [US]: { 'withheld/written-outside-home/-': 4 },
      'eu-west-1': { 'redacted/pii-outside-jurisdiction/eu-central-1': 2, 'withheld/destination-outside-jurisdiction/us-east-1': 3, 'withheld/unknown-home-region/-': 3 },
      'eu-central-1': { 'withheld/destination-outside-jurisdiction/us-east-1': 1 },
    };
    let last: Record<string, number> = {};
    await waitUntil('rows placed as the policy says and every ledger written', async () => {
      last = await placement();
      if (Object.keys(last).length > 0) return false;
      for (const r of REGIONS) {
        const n = Object.values(await ledger(c, r)).reduce((a, b) => a + b, 0);
        if (n < Object.values(expected[r]!).reduce((a, b) => a + b, 0)) return false;
      }
      return true;
    }, TIMEOUT_MS).catch((err: unknown) => {
      console.log(`[misplaced ${broker}] not converged: ${JSON.stringify(last)}`);
      throw err;
    });
    for (const r of REGIONS) {
      const l = await ledger(c, r);
      console.log(`[misplaced ${broker}] ${r} ledger ${JSON.stringify(l)}`);
      expect(l, `ledger of ${r}`).toEqual(expected[r]);
    }
    const metrics = { [US]: await metric(c, US, 'written-outside-home'), 'eu-west-1': await metric(c, 'eu-west-1', 'unknown-home-region'), 'eu-central-1': (await metric(c, 'eu-central-1', 'written-outside-home')) + (await metric(c, 'eu-central-1', 'unknown-home-region')) };
    console.log(`[misplaced ${broker}] regionsync_gdpr_misplaced_total ${JSON.stringify(metrics)}`);
    expect(metrics).toEqual({ [US]: 4, 'eu-west-1': 3, 'eu-central-1': 0 });
  }, 600_000);

  // A US user whose home moves to the EU while written in eu-west-1 (moved: report): the
  // EU regions follow the move, us-east-1 keeps its copy under the old home (audited and
  // counted in eu-west-1, nothing deleted). A US user deleted in eu-west-1 is deleted in
  // us-east-1 too: a delete is judged by the row it removed, not by its bare key.
  it('reports a row whose home moved to another jurisdiction and keeps the old copies', async () => {
    const c = cluster!;
    const moved = randomUUID();
    const gone = randomUUID();
    for (const id of [moved, gone]) await c.query(US, 'insert into users values ($1, $2, $3, $4, now())', [id, US, `moved.${id}@example.test`, 'Moved User']);
    const homeIn = async (r: string, id: string) => (await c.query<{ home: string }>(r, 'select home_region as home from users where id = $1', [id]))[0]?.home;
    await waitUntil('US users everywhere', async () => (await Promise.all(REGIONS.flatMap((r) => [homeIn(r, moved), homeIn(r, gone)]))).every((h) => h === US), TIMEOUT_MS);
    const before = Object.fromEntries(await Promise.all(REGIONS.map(async (r) => [r, await ledger(c, r)] as const)));
    await c.query('eu-west-1', "update users set home_region = 'eu-west-1' where id = $1", [moved]);
    await c.query('eu-west-1', 'delete from users where id = $1', [gone]);
    await waitUntil('move reached eu-central-1 and the delete reached every region', async () => {
      return (await homeIn('eu-central-1', moved)) === 'eu-west-1' && (await Promise.all(REGIONS.map((r) => homeIn(r, gone)))).every((h) => h === undefined);
    }, TIMEOUT_MS);
    const barrier = 800_000 + Math.floor(Math.random() * 1000);
    await c.query('eu-west-1', 'insert into products values ($1, $2, 1, 1, now())', [barrier, 'barrier']);
    await waitUntil('barrier in us-east-1', async () => (await c.query(US, 'select 1 from products where id = $1', [barrier])).length === 1, TIMEOUT_MS);
    expect(await homeIn(US, moved), 'us-east-1 keeps its copy under the old home').toBe(US);
    expect(await homeIn('eu-west-1', moved)).toBe('eu-west-1');
    const delta = async (r: string) => {
      const now = await ledger(c, r);
      return Object.fromEntries(Object.entries(now).filter(([k, n]) => n !== (before[r]![k] ?? 0)).map(([k, n]) => [k, n - (before[r]![k] ?? 0)]));
    };
    expect(await delta('eu-west-1'), 'eu-west-1 new ledger entries').toEqual({ 'withheld/home-moved/-': 1, 'withheld/destination-outside-jurisdiction/us-east-1': 1 });
    expect(await delta(US), 'us-east-1 new ledger entries (no refusal of the delete)').toEqual({});
    expect(await delta('eu-central-1'), 'eu-central-1 new ledger entries').toEqual({});
    expect(await metric(c, 'eu-west-1', 'home-moved'), 'home-moved metric in eu-west-1').toBe(1);
  }, 600_000);
});
