// Issue 6 points 3, 7 and 8: residency end to end on the sandbox (us-east-1, eu-west-1,
// eu-central-1), once on NATS and once on Kafka, with the demo policy (us open, eu strict;
// users.email/full_name PII, redact). A mixed workload writes EU users/orders in the EU
// regions (in transactions that also touch global products and US orders, so the
// us-east-1 destination does receive messages from the EU), and US users/orders in
// us-east-1, with canary PII values. Then:
//  - EU rows are in both EU databases and absent from the US one; US rows are everywhere,
//    email/full_name NULL in the EU and intact in us-east-1 (point 8);
//  - the raw messages the broker stores for the us-east-1 destination hold no EU row key
//    and no EU canary value, and the EU destinations hold no US canary value (point 3);
//  - each region's ledger counts exactly one `withheld` per EU change and destination held
//    back and one `redacted` per US user change and destination redacted, no `refused`,
//    and the chain verifies (points 5, 8);
//  - no agent log contains any canary value (point 7).
// Assertion messages carry counts and categories only, never row values.
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Kafka, logLevel } from 'kafkajs';
import { DEMO_POLICY_PATH, readLedger, verifyLedger } from '@regionsync/gdpr';
import { Cluster, waitUntil, type Broker } from '@regionsync/sandbox';

const US = 'us-east-1';
const EU = ['eu-west-1', 'eu-central-1'] as const;
const REGIONS = [US, ...EU];
const USERS_PER_REGION = Number(process.env.E2E_RESIDENCY_USERS ?? 24);
const CONVERGE_TIMEOUT_MS = Number(process.env.E2E_CONVERGE_TIMEOUT_S ?? 240) * 1000;

interface User { id: string; home: string; email: string; fullName: string; writtenIn: string }
interface Order { id: string; userId: string; home: string; status: string; writtenIn: string; deleted: boolean }

/** What the workload wrote and what every region must end up holding. */
interface Written {
  users: Map<string, User>;
  orders: Map<string, Order>;
  /** product id → final stock (products are global; stock is a counter column). */
  products: Map<number, number>;
  /** Row changes per writing region and class, for the expected audit counts. */
  euChanges: Map<string, number>;
  usUserChanges: number;
  canaries: { eu: string[]; us: string[] };
}

const isEu = (home: string): boolean => (EU as readonly string[]).includes(home);

async function runWorkload(cluster: Cluster, run: string): Promise<Written> {
  const w: Written = { users: new Map(), orders: new Map(), products: new Map(), euChanges: new Map(REGIONS.map((r) => [r, 0])), usUserChanges: 0, canaries: { eu: [], us: [] } };
  const countEu = (region: string, n = 1) => w.euChanges.set(region, (w.euChanges.get(region) ?? 0) + n);
  const productBase: Record<string, number> = { [US]: 3000, 'eu-west-1': 1000, 'eu-central-1': 2000 };

  await Promise.all(
    REGIONS.map(async (region) => {
      const db = new pg.Client({ connectionString: cluster.dbUrl(region) });
      await db.connect();
      try {
        const mine: User[] = [];
        for (let i = 0; i < USERS_PER_REGION; i++) {
          // EU regions write EU users (homes alternate between the two EU regions); us-east-1 writes US users.
          const home = region === US ? US : EU[i % 2]!;
          const tag = `${run}.${region}.${i}`;
          const user: User = { id: randomUUID(), home, email: `canary.${tag}@example.test`, fullName: `Canary ${tag.replace(/[.-]/g, ' ')}`, writtenIn: region };
          const order: Order = { id: randomUUID(), userId: user.id, home, status: 'placed', writtenIn: region, deleted: false };
          const product = productBase[region]! + (i % 4);
          await db.query('begin');
          await db.query('insert into users values ($1, $2, $3, $4, now())', [user.id, home, user.email, user.fullName]);
          await db.query('insert into orders values ($1, $2, $3, $4, $5, now())', [order.id, user.id, home, 100 + i, order.status]);
          // A global row in the same transaction: it must reach us-east-1 without the EU rows.
          // Insert, then plain updates: INSERT … ON CONFLICT DO UPDATE on a counter column is
          // counted twice by the stamp trigger today (its BEFORE INSERT fires too).
          if (w.products.has(product)) await db.query('update products set stock = stock + 1, updated_at = now() where id = $1', [product]);
          else await db.query('insert into products values ($1, $2, 100, 1, now())', [product, `product ${product}`]);
          let usOrder: Order | undefined;
          if (region !== US && i % 3 === 0) {
            // A US customer's order placed through an EU region: open jurisdiction, travels everywhere.
            usOrder = { id: randomUUID(), userId: randomUUID(), home: US, status: 'placed', writtenIn: region, deleted: false };
            await db.query('insert into orders values ($1, $2, $3, $4, $5, now())', [usOrder.id, usOrder.userId, US, 7, usOrder.status]);
          }
          await db.query('commit');
          w.products.set(product, (w.products.get(product) ?? 0) + 1);
          w.users.set(user.id, user);
          w.orders.set(order.id, order);
          if (usOrder) w.orders.set(usOrder.id, usOrder);
          (isEu(home) ? w.canaries.eu : w.canaries.us).push(user.email, user.fullName);
          if (isEu(home)) countEu(region, 2);
          else w.usUserChanges += 1;
          mine.push(user);
        }
        // Updates and deletes: every third user renames (PII changes), every fourth order
        // ships, every fifth is deleted.
        for (let i = 0; i < mine.length; i++) {
          const user = mine[i]!;
          const order = [...w.orders.values()].find((o) => o.userId === user.id)!;
          if (i % 3 === 1) {
            user.fullName = `${user.fullName} Renamed`;
            (isEu(user.home) ? w.canaries.eu : w.canaries.us).push(user.fullName);
            await db.query('update users set full_name = $2, updated_at = now() where id = $1', [user.id, user.fullName]);
            if (isEu(user.home)) countEu(region);
            else w.usUserChanges += 1;
          }
          if (i % 4 === 2) {
            order.status = 'shipped';
            await db.query(`update orders set status = 'shipped', updated_at = now() where id = $1`, [order.id]);
            if (isEu(order.home)) countEu(region);
          }
          if (i % 5 === 3) {
            order.deleted = true;
            await db.query('delete from orders where id = $1', [order.id]);
            if (isEu(order.home)) countEu(region);
          }
        }
      } finally {
        await db.end();
      }
    }),
  );
  return w;
}

/** Which rows must be where, with which values; each mismatch is a category and a count. */
async function mismatches(cluster: Cluster, w: Written): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const bump = (k: string) => (out[k] = (out[k] ?? 0) + 1);
  for (const region of REGIONS) {
    const users = new Map((await cluster.query<{ id: string; home_region: string; email: string | null; full_name: string | null }>(region, 'select id, home_region, email, full_name from users')).map((r) => [r.id, r]));
    const orders = new Map((await cluster.query<{ id: string; status: string }>(region, 'select id, status from orders')).map((r) => [r.id, r]));
    const products = new Map((await cluster.query<{ id: string; stock: string }>(region, 'select id, stock from products')).map((r) => [Number(r.id), Number(r.stock)]));
    for (const u of w.users.values()) {
      const got = users.get(u.id);
      const allowed = region === US ? !isEu(u.home) : true;
      if (!allowed) {
        if (got) bump(`${region}: EU user present`);
        continue;
      }
      if (!got) {
        bump(`${region}: user missing`);
        continue;
      }
      const piiVisible = isEu(u.home) ? region !== US : region === US;
      if (piiVisible && (got.email !== u.email || got.full_name !== u.fullName)) bump(`${region}: user PII not the written value`);
      if (!piiVisible && (got.email !== null || got.full_name !== null)) bump(`${region}: user PII not redacted`);
    }
    for (const o of w.orders.values()) {
      const got = orders.get(o.id);
      const allowed = region === US ? !isEu(o.home) : true;
      if (!allowed) {
        if (got) bump(`${region}: EU order present`);
        continue;
      }
      if (o.deleted) {
        if (got) bump(`${region}: deleted order present`);
      } else if (!got) bump(`${region}: order missing`);
      else if (got.status !== o.status) bump(`${region}: order status stale`);
    }
    for (const [id, stock] of w.products) {
      const got = products.get(id);
      if (got === undefined) bump(`${region}: product missing`);
      else if (got !== stock) bump(`${region}: product stock differs`);
    }
    const knownUsers = users.size - [...users.keys()].filter((id) => w.users.has(id)).length;
    if (knownUsers > 0) out[`${region}: users not written by the workload`] = knownUsers;
  }
  return out;
}

async function auditCounts(cluster: Cluster, region: string): Promise<Record<string, number>> {
  const rows = await cluster.query<{ kind: string; n: string }>(region, 'select kind, count(*) as n from regionsync.audit_log group by kind');
  return Object.fromEntries(rows.map((r) => [r.kind, Number(r.n)]));
}

/** A stored message; `fresh` when written after the mark taken before this run's workload. */
interface StoredMessage { source: string; text: string; fresh: boolean }
/** Broker position per destination before the workload: NATS stream last seq, Kafka high watermark per partition. */
type Mark = Map<number, number>;

async function natsMark(cluster: Cluster, stream: string): Promise<Mark> {
  const nc = await connect({ servers: cluster.env.nats.servers, name: 'residency-check' });
  try {
    const info = await (await jetstreamManager(nc)).streams.info(stream);
    return new Map([[0, info.state.last_seq]]);
  } finally {
    await nc.close();
  }
}

async function kafkaMark(cluster: Cluster, topic: string): Promise<Mark> {
  const admin = new Kafka({ clientId: 'residency-check', brokers: cluster.env.kafka.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

async function natsStored(cluster: Cluster, subject: string, stream: string, mark: Mark): Promise<StoredMessage[]> {
  const nc = await connect({ servers: cluster.env.nats.servers, name: 'residency-check' });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(stream);
    const out: StoredMessage[] = [];
    for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      if (m === null || m.subject !== subject) continue;
      out.push(storedFrom(m.data, seq > (mark.get(0) ?? 0)));
    }
    return out;
  } finally {
    await nc.close();
  }
}

async function kafkaStored(cluster: Cluster, topic: string, mark: Mark): Promise<StoredMessage[]> {
  const kafka = new Kafka({ clientId: 'residency-check', brokers: cluster.env.kafka.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const want = new Map(offsets.map((o) => [o.partition, Number(o.high)]));
  const seen = new Map<number, number>();
  const out: StoredMessage[] = [];
  const consumer = kafka.consumer({ groupId: `residency-check-${randomUUID()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (message.value) out.push(storedFrom(message.value, Number(message.offset) >= (mark.get(partition) ?? 0)));
        seen.set(partition, Number(message.offset) + 1);
      },
    });
    await waitUntil(`reading ${topic} to its end`, async () => [...want].every(([p, high]) => high === 0 || (seen.get(p) ?? 0) >= high), 120_000);
  } finally {
    await consumer.disconnect();
  }
  return out;
}

function storedFrom(data: Uint8Array, fresh: boolean): StoredMessage {
  const text = Buffer.from(data).toString('utf8');
  const env = JSON.parse(text) as { body?: { sourceRegion?: string } };
  return { source: env.body?.sourceRegion ?? 'unknown', text, fresh };
}

const streamOf = (cluster: Cluster, destination: string) => `${cluster.o.prefix.replace(/\./g, '_')}-changes-${destination}`;
const subjectOf = (cluster: Cluster, destination: string) => `${cluster.o.prefix}.changes.${destination}`;

function mark(cluster: Cluster, broker: Broker, destination: string): Promise<Mark> {
  return broker === 'nats' ? natsMark(cluster, streamOf(cluster, destination)) : kafkaMark(cluster, subjectOf(cluster, destination));
}

/** Every message the broker stores for `destination`, from the start (earlier runs of this test included). */
function stored(cluster: Cluster, broker: Broker, destination: string, m: Mark): Promise<StoredMessage[]> {
  const subject = subjectOf(cluster, destination);
  return broker === 'nats' ? natsStored(cluster, subject, streamOf(cluster, destination), m) : kafkaStored(cluster, subject, m);
}

/** How many stored messages contain any of `needles` (raw payload text). */
function containing(messages: StoredMessage[], needles: string[]): number {
  return messages.filter((m) => needles.some((n) => m.text.includes(n))).length;
}

describe.each(['nats', 'kafka'] as Broker[])('residency end to end on %s (us-east-1 open, EU strict)', (broker) => {
  let cluster: Cluster | undefined;

  beforeAll(async () => {
    cluster = await Cluster.create({ database: `e2e_residency_${broker}`, broker, regions: REGIONS, policyFile: DEMO_POLICY_PATH });
    await cluster.startAll();
  }, 900_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 300_000);

  it('keeps EU rows in the EU, redacts US PII abroad, audits every transfer held back, logs no PII', async () => {
    const c = cluster!;
    const run = randomBytes(4).toString('hex');
    const marks = new Map<string, Mark>();
    for (const r of REGIONS) marks.set(r, await mark(c, broker, r));
    const t0 = Date.now();
    const w = await runWorkload(c, run);
    const euUsers = [...w.users.values()].filter((u) => isEu(u.home)).length;
    console.log(`[residency ${broker}] workload: ${w.users.size} users (${euUsers} EU), ${w.orders.size} orders, ${w.products.size} products in ${Date.now() - t0} ms; logs in ${c.dir}`);

    // Expected ledgers: EU regions hold back each EU change from us-east-1 (their only
    // destination outside the EU); us-east-1 redacts each US user change for both EU regions.
    const expected: Record<string, Record<string, number>> = {
      [US]: { redacted: w.usUserChanges * EU.length },
      'eu-west-1': { withheld: w.euChanges.get('eu-west-1')! },
      'eu-central-1': { withheld: w.euChanges.get('eu-central-1')! },
    };
    const total = (counts: Record<string, number> | undefined) => Object.values(counts ?? {}).reduce((a, b) => a + b, 0);
    let last: Record<string, number> = {};
    const t1 = Date.now();
    // Wait for the data, and for each ledger to hold at least as many entries as expected
    // (capture commits them before acknowledging the slot); equality is asserted below.
    await waitUntil('rows where the policy allows them and every ledger written', async () => {
      last = await mismatches(c, w);
      if (Object.keys(last).length > 0) return false;
      for (const r of REGIONS) if (total(await auditCounts(c, r)) < total(expected[r])) return false;
      return true;
    }, CONVERGE_TIMEOUT_MS).catch((err: unknown) => {
      console.log(`[residency ${broker}] not converged: ${JSON.stringify(last)}`);
      throw err;
    });
    console.log(`[residency ${broker}] converged in ${Date.now() - t1} ms`);
    expect(await mismatches(c, w)).toEqual({});

    // Point 8 audit counts (and no refusal anywhere), and every ledger's chain intact.
    for (const r of REGIONS) {
      const counts = await auditCounts(c, r);
      console.log(`[residency ${broker}] ${r} ledger: ${JSON.stringify(counts)} (expected ${JSON.stringify(expected[r])})`);
      expect(counts, `audit counts in ${r}`).toEqual(expected[r]);
      const ledger = await readLedger(c.dbUrl(r));
      expect(ledger.region).toBe(r);
      expect(verifyLedger(ledger.entries, ledger.storedHead)).toMatchObject({ ok: true, count: total(expected[r]) });
      const destinations = new Set(ledger.entries.map((e) => `${e.kind}->${e.destination ?? ''}:${e.reason}`));
      expect([...destinations].sort(), `ledger kinds/destinations/reasons in ${r}`).toEqual(
        r === US ? ['redacted->eu-central-1:pii-outside-jurisdiction', 'redacted->eu-west-1:pii-outside-jurisdiction'] : [`withheld->${US}:destination-outside-jurisdiction`],
      );
    }

    // Point 3: what the broker stores for the us-east-1 destination.
    const toUs = await stored(c, broker, US, marks.get(US)!);
    const fromEu = toUs.filter((m) => m.fresh && isEu(m.source));
    const euKeys = [...[...w.users.values()].filter((u) => isEu(u.home)).map((u) => u.id), ...[...w.orders.values()].filter((o) => isEu(o.home)).map((o) => o.id)];
    console.log(`[residency ${broker}] ${US} destination stores ${toUs.length} messages (${toUs.filter((m) => m.fresh).length} from this run, ${fromEu.length} of them from EU sources); checking ${euKeys.length} EU keys and ${w.canaries.eu.length} EU canaries`);
    expect(fromEu.length, 'EU sources sent their global and US rows to us-east-1').toBeGreaterThan(0);
    expect(containing(fromEu, ['"public.products"']), 'messages from the EU carrying products').toBeGreaterThan(0);
    expect(containing(toUs, euKeys), 'messages for us-east-1 holding an EU row key').toBe(0);
    expect(containing(toUs, w.canaries.eu), 'messages for us-east-1 holding an EU PII value').toBe(0);
    for (const eu of EU) {
      const toEu = await stored(c, broker, eu, marks.get(eu)!);
      const fresh = toEu.filter((m) => m.fresh);
      const fromUs = fresh.filter((m) => m.source === US);
      console.log(`[residency ${broker}] ${eu} destination stores ${toEu.length} messages (${fresh.length} from this run, ${fromUs.length} of them from ${US})`);
      expect(containing(fromUs, ['"public.users"']), `US users sent to ${eu}`).toBeGreaterThan(0);
      expect(containing(toEu, w.canaries.us), `messages for ${eu} holding a US PII value`).toBe(0);
      // Positive control: the same search finds EU keys and PII sent inside the EU, so the
      // zero counts above are not an artefact of the payload encoding.
      expect(containing(fresh, euKeys), `messages for ${eu} holding EU keys`).toBeGreaterThan(0);
      expect(containing(fresh, w.canaries.eu), `messages for ${eu} holding EU PII`).toBeGreaterThan(0);
    }

    // Point 7: no canary value in any log the agents wrote.
    const logs = readdirSync(c.dir).filter((f) => f.endsWith('.log'));
    expect(logs.length).toBeGreaterThanOrEqual(REGIONS.length);
    const canaries = [...w.canaries.eu, ...w.canaries.us];
    let bytes = 0;
    for (const f of logs) {
      const text = readFileSync(join(c.dir, f), 'utf8');
      bytes += text.length;
      expect(canaries.filter((v) => text.includes(v)).length, `canary PII values in ${f}`).toBe(0);
      // Also the user-part alone (e.g. a value logged without its domain).
      expect(text.includes(`canary.${run}.`), `canary prefix in ${f}`).toBe(false);
    }
    console.log(`[residency ${broker}] searched ${logs.length} agent logs (${bytes} bytes) for ${canaries.length} canary values: none found`);
  }, 600_000);
});
