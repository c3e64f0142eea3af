// Issue 6 point 6: erasure and export of one data subject, on NATS and on Kafka, with the
// demo policy (users.id, orders.user_id, documents.user_id are the subject columns).
//  - `regionsync export` returns the subject's rows from the regions that hold them (both
//    EU regions for an EU subject, none from us-east-1) as one JSON document;
//  - `regionsync erase` while eu-central-1 is cut off from the broker: us-east-1 and
//    eu-west-1 acknowledge, eu-central-1 is reported pending (exit 4); the erased rows
//    leave tombstones and a local write for the subject is refused;
//  - meanwhile eu-central-1 updates the subject's order (it has not seen the request): when
//    its link returns it carries out the erasure by itself and acknowledges, its late change
//    is refused in eu-west-1 (audited), and no region holds the subject any more;
//  - other subjects are untouched; each region's ledger holds its erasure steps and verifies.
// Assertion messages carry counts and region names, never row values.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cutLink, restoreLink } from '@regionsync/stack';
import { DEMO_POLICY_PATH, readLedger, verifyLedger } from '@regionsync/gdpr';
import { runErasureCli } from '@regionsync/coordinator';
import { Cluster, waitUntil, type Broker } from '@regionsync/sandbox';
import { agentHealth } from './scenario-support.js';

const US = 'us-east-1';
const EU1 = 'eu-west-1';
const EU2 = 'eu-central-1';
const REGIONS = [US, EU1, EU2];

interface Subject { id: string; home: string; orders: string[]; documents: string[] }

async function cli(command: 'erase' | 'export', args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runErasureCli(command, args, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

async function writeSubject(c: Cluster, region: string, home: string): Promise<Subject> {
  const s: Subject = { id: randomUUID(), home, orders: [randomUUID(), randomUUID()], documents: [randomUUID()] };
  const db = new pg.Client({ connectionString: c.dbUrl(region) });
  await db.connect();
  try {
    await db.query('begin');
    await db.query('insert into users values ($1, $2, $3, $4, now())', [s.id, home, `erasure.${s.id}@example.test`, 'Erasure Subject']);
    for (const [i, o] of s.orders.entries()) await db.query('insert into orders values ($1, $2, $3, $4, $5, now())', [o, s.id, home, 100 + i, 'placed']);
    for (const d of s.documents) await db.query('insert into documents values ($1, $2, $3, $4, null, null, now())', [d, s.id, home, 'contract']);
    await db.query('commit');
  } finally {
    await db.end();
  }
  return s;
}

/** Rows of the subject a region holds: users + orders + documents. */
async function held(c: Cluster, region: string, s: Subject): Promise<number> {
  const r = await c.query<{ n: number }>(
    region,
    `select (select count(*) from users where id = $1) + (select count(*) from orders where user_id = $1) + (select count(*) from documents where user_id = $1) as n`,
    [s.id],
  );
  return Number(r[0]!.n);
}

const rowsOf = (s: Subject) => 1 + s.orders.length + s.documents.length;

describe.each(['nats', 'kafka'] as Broker[])('erasure and export on %s', (broker) => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.create({ database: `e2e_erasure_${broker}`, broker, regions: REGIONS, policyFile: DEMO_POLICY_PATH });
    await cluster.startAll();
  }, 900_000);

  afterAll(async () => {
    await restoreLink(EU2, broker).catch(() => undefined);
    await cluster?.stop();
  }, 300_000);

  it('exports a subject as one document, erases it everywhere including a region cut off at request time, and keeps it erased', async () => {
    const c = cluster;
    const busArgs = ['--bus', broker, '--servers', (broker === 'nats' ? c.env.nats.servers : c.env.kafka.brokers).join(','), '--prefix', c.o.prefix, '--regions', REGIONS.join(',')];
    const eu = await writeSubject(c, EU1, EU1);
    const keep = await writeSubject(c, EU2, EU2);
    const us = await writeSubject(c, US, US);
    await waitUntil('subjects replicated where the policy allows', async () => {
      for (const s of [eu, keep]) for (const r of [EU1, EU2]) if ((await held(c, r, s)) !== rowsOf(s)) return false;
      for (const r of REGIONS) if ((await held(c, r, us)) !== rowsOf(us)) return false;
      return true;
    }, 120_000);
    expect(await held(c, US, eu), 'EU subject rows in us-east-1').toBe(0);

    // Export: one document, rows from both EU regions, nothing from us-east-1.
    const exp = await cli('export', ['--subject', eu.id, '--policy', DEMO_POLICY_PATH, ...REGIONS.flatMap((r) => ['--db', `${r}=${c.dbUrl(r)}`])]);
    expect(exp.code, exp.err).toBe(0);
    const doc = JSON.parse(exp.out) as { subject: string; regions: Record<string, { status: string; tables: Record<string, { id: string }[]> }> };
    expect(doc.subject).toBe(eu.id);
    for (const r of [EU1, EU2]) {
      expect(doc.regions[r]?.status, r).toBe('ok');
      expect(doc.regions[r]!.tables['public.users']?.map((x) => x.id), `${r} users`).toEqual([eu.id]);
      expect(doc.regions[r]!.tables['public.orders']?.map((x) => x.id).sort(), `${r} orders`).toEqual([...eu.orders].sort());
      expect(doc.regions[r]!.tables['public.documents']?.map((x) => x.id), `${r} documents`).toEqual(eu.documents);
    }
    expect(doc.regions[US]).toEqual({ status: 'ok', tables: {}, redacted: {} });

    // Cut eu-central-1 off, then change the subject's order there: it has not seen the request.
    await cutLink(EU2, broker);
    try {
      await waitUntil(`${EU2} autonomous`, async () => (await agentHealth(c.agents.get(EU2)!.httpUrl)).mode === 'autonomous', 60_000, 250);
      const first = await cli('erase', ['--subject', eu.id, ...busArgs, '--wait-s', '30']);
      expect(first.code, first.err).toBe(4);
      const report = JSON.parse(first.out) as { requestId: string; complete: boolean; regions: Record<string, { status: string; rowsErased?: number }> };
      expect(report.complete).toBe(false);
      expect(report.regions[US]).toMatchObject({ status: 'erased', rowsErased: 0 });
      expect(report.regions[EU1]).toMatchObject({ status: 'erased', rowsErased: rowsOf(eu) });
      expect(report.regions[EU2]).toEqual({ status: 'pending' });
      expect(first.err).toContain(`${EU2} has not acknowledged ${report.requestId}`);
      await c.query(EU2, `update orders set status = 'shipped', updated_at = now() where id = $1`, [eu.orders[0]]);

      // Erased in eu-west-1: no rows, a tombstone per row, a local write refused.
      expect(await held(c, EU1, eu), `${EU1} rows of the erased subject`).toBe(0);
      const tomb = await c.query<{ n: number; live: number }>(EU1, `select count(*)::int as n, count(*) filter (where not deleted)::int as live from regionsync.row_versions where pk = any($1::text[])`, [[eu.id, ...eu.orders, ...eu.documents]]);
      expect(tomb[0], `${EU1} tombstones`).toEqual({ n: rowsOf(eu), live: 0 });
      await expect(c.query(EU1, 'insert into orders values ($1, $2, $3, 1, $4, now())', [randomUUID(), eu.id, EU1, 'placed'])).rejects.toThrow(/data subject of this row was erased/);
      expect(await held(c, EU2, eu), `${EU2} still holds the subject while cut off`).toBe(rowsOf(eu));

      await restoreLink(EU2, broker);
      const status = await cli('erase', ['--status', report.requestId, ...busArgs, '--wait-s', '180']);
      expect(status.code, status.err).toBe(0);
      const done = JSON.parse(status.out) as typeof report;
      expect(done.regions[EU2]).toMatchObject({ status: 'erased', rowsErased: rowsOf(eu) });

      // The order update eu-central-1 made before it saw the request reaches eu-west-1 and is refused there.
      await waitUntil(`${EU1} refused the late change`, async () => {
        const l = await readLedger(c.dbUrl(EU1));
        return l.entries.some((e) => e.reason === 'erasure-late-change-refused' && e.table === 'public.orders');
      }, 120_000);
      for (const r of REGIONS) expect(await held(c, r, eu), `${r} rows of the erased subject`).toBe(0);
      for (const r of [EU1, EU2]) expect(await held(c, r, keep), `${r} rows of another subject`).toBe(rowsOf(keep));
      for (const r of REGIONS) expect(await held(c, r, us), `${r} rows of a US subject`).toBe(rowsOf(us));

      // Each region audited its steps, and its chain verifies.
      for (const r of REGIONS) {
        const l = await readLedger(c.dbUrl(r));
        const steps = l.entries.filter((e) => e.kind === 'erasure-step' && e.key.request_id === report.requestId).map((e) => `${e.reason}:${e.table}`);
        expect(steps, `${r} erasure steps`).toEqual(['erasure-requested:regionsync.erasures', 'erasure-rows-deleted:public.documents', 'erasure-rows-deleted:public.orders', 'erasure-rows-deleted:public.users', 'erasure-completed:regionsync.erasures']);
        expect(verifyLedger(l.entries, l.storedHead), `${r} ledger`).toMatchObject({ ok: true });
      }
      // A redelivered request is not carried out twice: still one completion per region.
      const again = await cli('erase', ['--status', report.requestId, ...busArgs, '--wait-s', '5']);
      expect(again.code, again.err).toBe(0);
    } finally {
      await restoreLink(EU2, broker).catch(() => undefined);
    }
  }, 900_000);
});
