// The three systems under test, each on its own database pair: PostgreSQL native logical
// replication (publication/subscription) and regionsync agents on NATS or Kafka.
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Cluster } from '@regionsync/sandbox';
import type { StackEnv } from '@regionsync/stack';
import { ARRIVED_TRIGGER_SQL, BENCH_SCHEMA_SQL, BENCH_TABLE, PROBE_ID_BASE } from './schema.js';
import { log, recreateDatabase, withClient, withDatabase } from './pg-util.js';
import { waitVisible } from './measure.js';
import { databaseWithFreePorts } from './ports.js';
import { pidsMatching } from './proc.js';

export type SystemName = 'native' | 'nats' | 'kafka';

export interface SystemUnderTest {
  name: SystemName;
  database: string;
  srcUrl: string;
  dstUrl: string;
  /** Destination sessions that apply changes (pg_stat_activity filter). */
  applyWhere: string;
  /** Source sessions that decode the WAL (pg_stat_activity filter). */
  senderWhere: string;
  /** Agent processes (regionsync only), by role. */
  agentPids(): Record<string, number | undefined>;
  agentUrls(): Record<string, string>;
  /** Broker processes the system's data passes through. */
  infraPids(): Record<string, number[]>;
  setup(): Promise<void>;
  teardown(): Promise<void>;
}

/** Writes a probe row on the source and waits until the destination shows it: the path is live. */
async function probe(s: SystemUnderTest, n: number): Promise<void> {
  const id = PROBE_ID_BASE + n;
  await withClient(s.srcUrl, (c) => c.query('insert into public.bench_rows (id, payload, sent_at) values ($1, $2, clock_timestamp())', [id, 'probe']));
  await waitVisible(s.dstUrl, id, id, 1, 120_000);
}

export async function warmUp(s: SystemUnderTest): Promise<void> {
  for (let i = 0; i < 20; i++) await probe(s, i);
}

export function nativeSystem(env: StackEnv, src: string, dst: string): SystemUnderTest {
  const database = 'bench_native';
  const srcAdmin = env.regions[src]!.databaseUrl;
  const dstAdmin = env.regions[dst]!.databaseUrl;
  const sub = 'bench_native_sub';
  const pub = 'bench_native_pub';
  const dropSubscription = async () => {
    const exists = await withClient(dstAdmin, (c) => c.query('select 1 from pg_database where datname = $1', [database]));
    if (exists.rowCount === 0) return;
    await withClient(withDatabase(dstAdmin, database), async (c) => {
      const r = await c.query('select 1 from pg_subscription where subname = $1', [sub]);
      if (r.rowCount === 0) return;
      // Drops the subscription's slot on the source too (it is reachable).
      await c.query(`drop subscription ${sub}`);
    });
  };
  const s: SystemUnderTest = {
    name: 'native',
    database,
    srcUrl: withDatabase(srcAdmin, database),
    dstUrl: withDatabase(dstAdmin, database),
    applyWhere: `datname = '${database}' and backend_type like 'logical replication%'`,
    senderWhere: `datname = '${database}' and backend_type = 'walsender'`,
    agentPids: () => ({}),
    agentUrls: () => ({}),
    infraPids: () => ({}),
    async setup() {
      await dropSubscription();
      await recreateDatabase(srcAdmin, database);
      await recreateDatabase(dstAdmin, database);
      await withClient(s.srcUrl, async (c) => {
        await c.query(BENCH_SCHEMA_SQL);
        await c.query(`create publication ${pub} for table ${BENCH_TABLE}`);
      });
      const u = new URL(srcAdmin);
      const conninfo = `host=${u.hostname} port=${u.port || 5432} user=${decodeURIComponent(u.username)} password=${decodeURIComponent(u.password)} dbname=${database}`;
      await withClient(s.dstUrl, async (c) => {
        await c.query(BENCH_SCHEMA_SQL);
        await c.query(ARRIVED_TRIGGER_SQL);
        await c.query(`create subscription ${sub} connection '${conninfo.replace(/'/g, "''")}' publication ${pub} with (copy_data = false)`);
      });
      await warmUp(s);
    },
    async teardown() {
      await dropSubscription();
    },
  };
  return s;
}

export function regionsyncSystem(broker: 'nats' | 'kafka', env: StackEnv, src: string, dst: string, agentConfig: Record<string, unknown>): SystemUnderTest {
  let cluster: Cluster | undefined;
  const s: SystemUnderTest = {
    name: broker,
    database: `bench_${broker}`,
    get srcUrl() {
      return withDatabase(env.regions[src]!.databaseUrl, this.database);
    },
    get dstUrl() {
      return withDatabase(env.regions[dst]!.databaseUrl, this.database);
    },
    get applyWhere() {
      return `datname = '${this.database}' and application_name = 'regionsync-apply-${src}'`;
    },
    get senderWhere() {
      return `datname = '${this.database}' and backend_type = 'walsender'`;
    },
    agentPids: () => ({ [`agent-${src}`]: cluster?.agents.get(src)?.process?.pid, [`agent-${dst}`]: cluster?.agents.get(dst)?.process?.pid }),
    agentUrls: () => ({ [`agent-${src}`]: cluster?.agents.get(src)?.httpUrl ?? '', [`agent-${dst}`]: cluster?.agents.get(dst)?.httpUrl ?? '' }),
    infraPids: () => ({ [broker]: pidsMatching(broker === 'nats' ? '/bin/nats-server-' : 'kafka.Kafka') }),
    async setup() {
      s.database = await databaseWithFreePorts(`bench_${broker}`, 2);
      cluster = await Cluster.create({
        database: s.database,
        broker,
        regions: [src, dst],
        // A fresh prefix per run: streams/topics of an earlier (possibly aborted) run can never leak in.
        prefix: `rs-bench-${broker}-${Date.now().toString(36)}`,
        schemaSql: BENCH_SCHEMA_SQL,
        tables: [{ name: BENCH_TABLE, strategy: 'row-lww', counterColumns: [] }],
        agentConfig,
        agentRuntime: 'dist',
        // Production agents talk to the broker directly; the fault-injection proxy is for tests.
        brokerLink: 'direct',
        // BENCH_CPU_PROF=<dir>: V8 CPU profile of each agent, written when it stops.
        ...(process.env.BENCH_CPU_PROF
          ? {
              agentEnv: (r: string) => ({
                NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${pathToFileURL(fileURLToPath(new URL('./agent-cpu-prof.mjs', import.meta.url))).href}`.trim(),
                BENCH_CPU_PROF_DIR: join(process.env.BENCH_CPU_PROF!, `${broker}-${r}`),
              }),
            }
          : {}),
      });
      await cluster.query(dst, ARRIVED_TRIGGER_SQL);
      await cluster.startAll();
      log(`${broker}: agents ready (${Object.values(s.agentUrls()).join(', ')}; logs in ${cluster.dir})`);
      await warmUp(s);
    },
    async teardown() {
      await cluster?.stop();
    },
  };
  return s;
}
