import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Redis } from 'ioredis';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kafka, logLevel } from 'kafkajs';
import { create as createKubo } from 'kubo-rpc-client';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ensureStack, cutLink, restoreLink } from './test-support.js';
import type { StackEnv } from './stack-env.js';
import { status } from './stack.js';
import { resetProxies } from './services/toxiproxy.js';
import { resolveLayout } from './config.js';
import { MODERN_PG_FROM_REGION } from './install.js';
import { VERSIONS } from './versions.js';

let env: StackEnv;
const run = randomUUID().slice(0, 8);

beforeAll(async () => {
  env = await ensureStack();
  await resetProxies(resolveLayout());
});
afterAll(async () => {
  await resetProxies(resolveLayout());
});

async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function natsRoundTrip(servers: string[], stream: string): Promise<string> {
  const nc: NatsConnection = await connect({ servers, reconnect: false, timeout: 3000 });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
    const js = jetstream(nc);
    const ack = await js.publish(`${stream}.hello`, new TextEncoder().encode(`hello ${stream}`));
    expect(ack.seq).toBeGreaterThan(0);
    await jsm.consumers.add(stream, { durable_name: 'rt', ack_policy: AckPolicy.Explicit });
    const consumer = await js.consumers.get(stream, 'rt');
    const m = await consumer.next({ expires: 5000 });
    if (!m) throw new Error('no message from JetStream');
    m.ack();
    await jsm.streams.delete(stream);
    return m.string();
  } finally {
    await nc.close();
  }
}

async function kafkaRoundTrip(brokers: string[], topic: string): Promise<string> {
  const kafka = new Kafka({ clientId: `rt-${topic}`, brokers, logLevel: logLevel.NOTHING, connectionTimeout: 3000, retry: { retries: 2 } });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: `hello ${topic}` }] });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: `rt-${topic}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message from Kafka within 30 s')), 30_000);
    void consumer.run({ eachMessage: async ({ message }) => { clearTimeout(timer); resolve(String(message.value)); } });
  });
  await consumer.disconnect();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  return got;
}

describe('native stack round trip', () => {
  it('reports every service healthy', async () => {
    const rows = await status();
    expect(rows.filter((r) => !r.healthy)).toEqual([]);
    expect(rows.length).toBe(env.regionNames.length * 3 + 4);
  });

  it('PostgreSQL in every region: settings for logical replication and a real write/read', async () => {
    for (const [i, region] of env.regionNames.entries()) {
      await withPg(env.regions[region]!.databaseUrl, async (c) => {
        // Mixed major versions, as in a fleet mid-upgrade: the third region on and later run the newer one.
        const major = Math.floor(Number((await c.query<{ v: string }>("select current_setting('server_version_num') as v")).rows[0]!.v) / 10_000);
        expect(major, region).toBe(Number(i >= MODERN_PG_FROM_REGION ? VERSIONS.postgresModern.major : VERSIONS.postgresMajor));
        const s = await c.query<{ name: string; setting: string }>(
          "select name, setting from pg_settings where name in ('wal_level','track_commit_timestamp','max_replication_slots','max_wal_senders','max_slot_wal_keep_size')",
        );
        const m = Object.fromEntries(s.rows.map((r) => [r.name, r.setting]));
        expect(m.wal_level).toBe('logical');
        expect(m.track_commit_timestamp).toBe('on');
        expect(Number(m.max_replication_slots)).toBeGreaterThanOrEqual(16);
        expect(Number(m.max_wal_senders)).toBeGreaterThanOrEqual(16);
        expect(Number(m.max_slot_wal_keep_size)).toBeGreaterThan(0); // bounded, not -1
        await c.query('create table if not exists stack_rt (id text primary key, v text)');
        await c.query('insert into stack_rt values ($1, $2)', [`${run}-${region}`, region]);
        const r = await c.query('select v from stack_rt where id = $1', [`${run}-${region}`]);
        expect(r.rows[0].v).toBe(region);
      });
    }
  });

  it('Redis in every region: write/read, and each region has its own instance', async () => {
    for (const region of env.regionNames) {
      const r = new Redis(env.regions[region]!.redisUrl);
      await r.set(`rt:${run}`, region);
      expect(await r.get(`rt:${run}`)).toBe(region);
      r.disconnect();
    }
    const first = new Redis(env.regions[env.regionNames[0]!]!.redisUrl);
    expect(await first.get(`rt:${run}`)).toBe(env.regionNames[0]);
    first.disconnect();
  });

  it('S3 bucket per region: put/get an object', async () => {
    for (const region of env.regionNames) {
      const e = env.regions[region]!.s3;
      const s3 = new S3Client({ endpoint: e.endpoint, region: e.region, forcePathStyle: true, credentials: { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey } });
      await s3.send(new PutObjectCommand({ Bucket: e.bucket, Key: `rt/${run}`, Body: `object in ${region}` }));
      const got = await s3.send(new GetObjectCommand({ Bucket: e.bucket, Key: `rt/${run}` }));
      expect(await got.Body?.transformToString()).toBe(`object in ${region}`);
      s3.destroy();
    }
  });

  it('Kubo per region: add in one region, fetch by CID from every other region over the private swarm', async () => {
    const [origin, ...others] = env.regionNames;
    const payload = `regionsync ${run} ${Date.now()}`;
    const { cid } = await createKubo({ url: env.regions[origin!]!.kuboApiUrl }).add(payload);
    for (const region of others) {
      const kubo = createKubo({ url: env.regions[region]!.kuboApiUrl });
      const chunks: Uint8Array[] = [];
      for await (const c of kubo.cat(cid, { timeout: 30_000 })) chunks.push(c);
      expect(Buffer.concat(chunks).toString()).toBe(payload);
    }
  });

  it('NATS JetStream and Kafka through every region\'s proxy', async () => {
    for (const region of env.regionNames) {
      const tag = `rt${run}${region.replace(/-/g, '')}`;
      expect(await natsRoundTrip(env.regions[region]!.nats.servers, tag.toUpperCase())).toBe(`hello ${tag.toUpperCase()}`);
      expect(await kafkaRoundTrip(env.regions[region]!.kafka.brokers, tag)).toBe(`hello ${tag}`);
    }
  });

  it('cutting one region\'s proxies makes its brokers unreachable while the others keep working', async () => {
    const [cut, ...others] = env.regionNames;
    await cutLink(cut!, 'nats');
    await cutLink(cut!, 'kafka');
    try {
      await expect(connect({ servers: env.regions[cut!]!.nats.servers, reconnect: false, timeout: 2000 })).rejects.toThrow();
      const kafka = new Kafka({ clientId: 'cut', brokers: env.regions[cut!]!.kafka.brokers, logLevel: logLevel.NOTHING, connectionTimeout: 2000, retry: { retries: 0 } });
      const admin = kafka.admin();
      await expect(admin.connect().then(() => admin.listTopics())).rejects.toThrow();
      await admin.disconnect().catch(() => undefined);
      for (const region of others) {
        const tag = `cut${run}${region.replace(/-/g, '')}`;
        expect(await natsRoundTrip(env.regions[region]!.nats.servers, tag.toUpperCase())).toBe(`hello ${tag.toUpperCase()}`);
        expect(await kafkaRoundTrip(env.regions[region]!.kafka.brokers, tag)).toBe(`hello ${tag}`);
      }
    } finally {
      await restoreLink(cut!, 'nats');
      await restoreLink(cut!, 'kafka');
    }
    const tag = `back${run}`;
    expect(await natsRoundTrip(env.regions[cut!]!.nats.servers, tag.toUpperCase())).toBe(`hello ${tag.toUpperCase()}`);
  });
});
