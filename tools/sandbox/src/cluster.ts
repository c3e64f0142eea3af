import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { ensureStack, findRepoRoot, type StackEnv } from '@regionsync/stack';
import { DEMO_SCHEMA_SQL, DEMO_TABLES } from './demo-schema.js';

export type Broker = 'nats' | 'kafka';

export interface ClusterOptions {
  /** Database created in every region's cluster; its name namespaces slots and origins. */
  database: string;
  broker: Broker;
  regions?: string[];
  /** Cluster-wide subject/topic prefix, unique per cluster so runs never see each other. */
  prefix?: string;
  schemaSql?: string;
  tables?: typeof DEMO_TABLES;
  policyFile?: string;
  /** Extra agent config merged into each region's file (e.g. replication tuning), or per region. */
  agentConfig?: Record<string, unknown> | ((region: string) => Record<string, unknown>);
  /** Regions outside the stack's list (e.g. a scratch PostgreSQL under libfaketime): their database; they reach the brokers directly. */
  extraRegions?: Record<string, { databaseUrl: string }>;
  /** Environment for agent processes (e.g. LD_PRELOAD for libfaketime). */
  agentEnv?: (region: string) => NodeJS.ProcessEnv;
  /** Drop and recreate the database (fresh cluster). Default true. */
  fresh?: boolean;
  /** Agents outlive this process (sandbox): detached, tracked by pid files in the cluster dir. */
  detached?: boolean;
  /**
   * How agent processes run. 'source' (default): TypeScript through tsx, so tests see every
   * edit without a build. 'dist': the compiled apps/agent/dist/main.js, as in production
   * (benchmarks: tsx's loader adds about 28 MB of RSS and its own CPU); build it first with
   * `nx run @regionsync/agent:build` (`npm run bench` does).
   */
  agentRuntime?: 'source' | 'dist';
  /**
   * How agents reach the broker. 'proxy' (default): through the region's Toxiproxy link, so
   * tests can cut it. 'direct': straight to the broker, as in production; for benchmarks
   * that never cut the link (the proxy adds a process hop and its CPU to every message).
   */
  brokerLink?: 'proxy' | 'direct';
}

export interface AgentHandle {
  region: string;
  databaseUrl: string;
  httpUrl: string;
  configPath: string;
  logPath: string;
  process: ChildProcess | undefined;
}

/**
 * Node flags the agent runs with, as apps/agent/README.md tells operators to. A 4 MB
 * semi-space bounds V8's young generation (32 MB by default, all of it resident while
 * apply allocates fast): the applying agent's peak RSS fell by about 23 MB in the
 * replication benchmark, with no measurable change in throughput or latency.
 */
export const AGENT_NODE_FLAGS = ['--max-semi-space-size=4'];

/**
 * Environment the agent runs with, as apps/agent/README.md tells operators to. glibc gives
 * each thread that allocates (V8's compiler and GC helpers among them) its own malloc arena,
 * and memory freed into an arena is rarely returned: with two arenas the applying agent's
 * peak RSS in the replication benchmark was 165-195 MB over 13 runs (median about 173),
 * against 180-202 MB without, with the same throughput and latency. An operator's own
 * setting wins.
 */
export const AGENT_ENV: NodeJS.ProcessEnv = { MALLOC_ARENA_MAX: '2' };

// Agents a test process started and has not seen exit. A test that fails before stopping
// its cluster (or the agent a rolling update replaced) must not leave one running: a
// connected agent holds its region's server and the next test's expectations.
const liveAgents = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of liveAgents) c.kill('SIGKILL');
});

export class Cluster {
  readonly agents = new Map<string, AgentHandle>();
  private readonly spawned = new Set<ChildProcess>();

  private constructor(readonly env: StackEnv, readonly o: Required<Pick<ClusterOptions, 'database' | 'broker' | 'prefix'>> & ClusterOptions, readonly regions: string[], readonly dir: string) {}

  static async create(o: ClusterOptions): Promise<Cluster> {
    const env = await ensureStack();
    const regions = o.regions ?? env.regionNames;
    const dir = join(findRepoRoot(), '.stack', 'sandbox', o.database);
    mkdirSync(dir, { recursive: true });
    // A fresh cluster gets fresh subjects/topics: a re-run must never consume what an
    // earlier (possibly aborted) run left on the shared brokers. A kept cluster (sandbox)
    // keeps its prefix.
    const prefixFile = join(dir, 'prefix');
    const kept = (o.fresh ?? true) === false && existsSync(prefixFile) ? readFileSync(prefixFile, 'utf8').trim() : undefined;
    const prefix = o.prefix ?? kept ?? `rs-${o.database.replace(/[^a-z0-9]/g, '').slice(0, 24)}-${randomBytes(3).toString('hex')}`;
    writeFileSync(prefixFile, prefix);
    const c = new Cluster(env, { ...o, prefix }, regions, dir);
    for (const r of regions) await c.prepareDatabase(r, o.fresh ?? true);
    return c;
  }

  private baseUrl(region: string): string {
    return this.o.extraRegions?.[region]?.databaseUrl ?? this.env.regions[region]!.databaseUrl;
  }

  dbUrl(region: string): string {
    const u = new URL(this.baseUrl(region));
    u.pathname = `/${this.o.database}`;
    return u.toString();
  }

  private async prepareDatabase(region: string, fresh: boolean): Promise<void> {
    const admin = new pg.Client({ connectionString: this.baseUrl(region) });
    await admin.connect();
    try {
      const db = this.o.database;
      if (fresh) {
        // Slots and origins are cluster-wide: drop this database's leftovers first.
        await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`, [db]);
        await admin.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1 and not active`, [db]);
        await admin.query(`select pg_replication_origin_drop(roname) from pg_replication_origin where roname like $1`, [`regionsync_${db.replace(/\W/g, '_').toLowerCase()}_%`]);
        await admin.query(`drop database if exists "${db}"`);
      }
      const exists = await admin.query('select 1 from pg_database where datname = $1', [db]);
      if (exists.rowCount === 0) await admin.query(`create database "${db}"`);
    } finally {
      await admin.end();
    }
    const c = new pg.Client({ connectionString: this.dbUrl(region) });
    await c.connect();
    try {
      await c.query(this.o.schemaSql ?? DEMO_SCHEMA_SQL);
    } finally {
      await c.end();
    }
  }

  configFor(region: string, port: number): Record<string, unknown> {
    const r = this.env.regions[region];
    const direct = !r || this.o.brokerLink === 'direct';
    const servers = direct ? (this.o.broker === 'nats' ? this.env.nats.servers : this.env.kafka.brokers) : this.o.broker === 'nats' ? r.nats.servers : r.kafka.brokers;
    const extra = typeof this.o.agentConfig === 'function' ? this.o.agentConfig(region) : this.o.agentConfig;
    return {
      region,
      regions: this.regions,
      database: { url: this.dbUrl(region) },
      bus: { kind: this.o.broker, servers, prefix: this.o.prefix },
      tables: this.o.tables ?? DEMO_TABLES,
      ...(this.o.policyFile ? { policyFile: this.o.policyFile } : {}),
      http: { host: '127.0.0.1', port },
      ...extra,
    };
  }

  private agentCommand(): string[] {
    const root = findRepoRoot();
    if (this.o.agentRuntime !== 'dist') return [...AGENT_NODE_FLAGS, '--conditions=@regionsync/source', '--import', 'tsx', join(root, 'apps/agent/src/main.ts')];
    const main = join(root, 'apps/agent/dist/main.js');
    if (!existsSync(main)) throw new Error(`agentRuntime 'dist': ${main} is missing; run \`npx nx run @regionsync/agent:build\` first`);
    return [...AGENT_NODE_FLAGS, main];
  }

  /** Starts (or restarts) one region's agent process and waits until it is ready. */
  async startAgent(region: string, timeoutMs = 60_000): Promise<AgentHandle> {
    const prev = this.agents.get(region);
    const port = prev ? Number(new URL(prev.httpUrl).port) : await freePort();
    const configPath = join(this.dir, `${region}.yaml`);
    writeFileSync(configPath, stringify(this.configFor(region, port)));
    const logPath = join(this.dir, `${region}.log`);
    const log = openSync(logPath, 'a');
    const child = spawn(process.execPath, [...this.agentCommand(), configPath], {
      cwd: findRepoRoot(),
      env: { ...AGENT_ENV, ...process.env, ...this.o.agentEnv?.(region) },
      stdio: ['ignore', log, log],
      detached: this.o.detached ?? false,
    });
    closeSync(log);
    if (this.o.detached) {
      child.unref();
      writeFileSync(join(this.dir, `${region}.pid`), String(child.pid));
    } else {
      liveAgents.add(child);
      this.spawned.add(child);
      child.once('exit', () => {
        liveAgents.delete(child);
        this.spawned.delete(child);
      });
    }
    const handle: AgentHandle = { region, databaseUrl: this.dbUrl(region), httpUrl: `http://127.0.0.1:${port}`, configPath, logPath, process: child };
    this.agents.set(region, handle);
    await waitUntil(`agent ${region} ready (log: ${logPath})`, async () => {
      if (child.exitCode !== null) throw new Error(`agent ${region} exited with ${child.exitCode}; see ${logPath}`);
      const res = await fetch(`${handle.httpUrl}/readyz`).catch(() => undefined);
      return res?.status === 200;
    }, timeoutMs);
    return handle;
  }

  /**
   * Adds a region to a running cluster the documented way: every running agent is
   * restarted (drained with SIGTERM) with the new region list, then the new region's
   * agent starts on its empty database (schema only) and receives its initial copy.
   */
  async addRegion(region: string, databaseUrl?: string): Promise<void> {
    if (databaseUrl) this.o.extraRegions = { ...this.o.extraRegions, [region]: { databaseUrl } };
    this.regions.push(region);
    await this.prepareDatabase(region, true);
    for (const r of [...this.agents.keys()]) await this.restartAgent(r);
    await this.startAgent(region);
  }

  /**
   * Starts a second agent process for `region` while the current one keeps running, as a
   * rolling update does (the new one comes up before the old one is stopped). The new
   * process becomes the region's agent here; the old one is returned for the caller to stop.
   */
  async startReplacement(region: string, timeoutMs = 60_000): Promise<{ old: AgentHandle | undefined; handle: AgentHandle }> {
    const old = this.agents.get(region);
    this.agents.delete(region);
    try {
      return { old, handle: await this.startAgent(region, timeoutMs) };
    } catch (err) {
      if (old) this.agents.set(region, old);
      throw err;
    }
  }

  /** Changes the replicated tables of every agent (rolling restart). */
  async setTables(tables: NonNullable<ClusterOptions['tables']>): Promise<void> {
    this.o.tables = tables;
    for (const r of [...this.agents.keys()]) await this.restartAgent(r);
  }

  async restartAgent(region: string): Promise<AgentHandle> {
    const code = await this.stopAgent(region, 'SIGTERM');
    if (code !== 0 && code !== null) throw new Error(`agent ${region} exited with ${code} while draining`);
    return this.startAgent(region);
  }

  async startAll(): Promise<void> {
    for (const r of this.regions) await this.startAgent(r);
  }

  /** SIGKILL (crash) or SIGTERM (graceful drain) one agent and wait for it to exit. */
  async stopAgent(region: string, signal: 'SIGKILL' | 'SIGTERM' = 'SIGTERM', timeoutMs = 60_000): Promise<number | null> {
    const p = this.agents.get(region)?.process;
    return p ? stopProcess(p, signal, timeoutMs) : null;
  }

  /**
   * Stops every agent (drained). Unless `keepSlots`, also drops this database's slots and
   * origins: an abandoned slot would keep retaining WAL on a cluster other tests share.
   */
  async stop(opts: { keepSlots?: boolean } = {}): Promise<void> {
    for (const r of this.agents.keys()) await this.stopAgent(r, 'SIGTERM');
    // Any other process this cluster started and nobody stopped (a replaced agent).
    for (const p of [...this.spawned]) await stopProcess(p, 'SIGTERM', 60_000);
    if (opts.keepSlots) return;
    for (const r of this.regions) {
      const admin = new pg.Client({ connectionString: this.baseUrl(r) });
      try {
        await admin.connect();
        await admin.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1 and not active`, [this.o.database]);
        await admin.query(`select pg_replication_origin_drop(roname) from pg_replication_origin where roname like $1`, [`regionsync_${this.o.database.replace(/\W/g, '_').toLowerCase()}_%`]);
      } catch {
        // best effort: the database or cluster may already be gone
      } finally {
        await admin.end().catch(() => undefined);
      }
    }
  }

  async query<T extends pg.QueryResultRow = pg.QueryResultRow>(region: string, sql: string, params: unknown[] = []): Promise<T[]> {
    const c = new pg.Client({ connectionString: this.dbUrl(region) });
    await c.connect();
    try {
      return (await c.query<T>(sql, params)).rows;
    } finally {
      await c.end();
    }
  }
}

/** Signal a child and wait for it to exit; SIGKILL after `timeoutMs`. */
async function stopProcess(p: ChildProcess, signal: 'SIGKILL' | 'SIGTERM', timeoutMs: number): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return p.exitCode;
  const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
  p.kill(signal);
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
      if (err instanceof Error && /exited with/.test(err.message)) throw err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

/** A port nothing listens on right now (the OS picks it), kept for the agent's restarts. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
