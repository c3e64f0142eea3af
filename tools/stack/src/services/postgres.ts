import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import type { StackLayout } from '../config.js';
import { PG_BIN, pgBinForMajor, pgFor, type Log } from '../install.js';
import { assertPortFree, isAlive, run, waitFor } from '../process.js';

export const PG_USER = 'regionsync';
export const PG_PASSWORD = 'regionsync';
export const PG_DATABASE = 'regionsync';

/** Settings every regional cluster runs with; the round-trip test checks them. */
export const PG_SETTINGS: Record<string, string> = {
  wal_level: 'logical',
  track_commit_timestamp: 'on',
  // Also bounds how many replication origins can hold progress: every test database has
  // one per source region, so keep plenty.
  max_replication_slots: '256',
  max_wal_senders: '32',
  max_worker_processes: '16',
  max_logical_replication_workers: '8',
  // Bounded so a region cut off for too long invalidates its slot instead of filling the disk.
  max_slot_wal_keep_size: '2GB',
  wal_sender_timeout: '60s',
  shared_buffers: '64MB',
  max_connections: '100',
  listen_addresses: "'127.0.0.1'",
};

export function pgDataDir(layout: StackLayout, region: string): string {
  return join(layout.stateDir, 'pg', region);
}

export function pgUrl(layout: StackLayout, i: number): string {
  return `postgres://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${layout.ports.postgres(i)}/${PG_DATABASE}`;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

// PostgreSQL refuses to run as root, so as root we run its tools as the `postgres` user.
// `extraEnv` goes through env(1) so it survives the user switch (e.g. LD_PRELOAD=libfaketime).
function asPgUser(cmd: string, args: string[], what: string, extraEnv: Record<string, string> = {}): string {
  const envArgs = Object.entries(extraEnv).map(([k, v]) => `${k}=${v}`);
  const full = envArgs.length > 0 ? ['env', ...envArgs, cmd, ...args] : [cmd, ...args];
  if (isRoot()) return run('runuser', ['-u', 'postgres', '--', ...full], { what, cwd: '/' });
  return run(full[0]!, full.slice(1), { what });
}

function pgOwn(path: string): void {
  if (!isRoot()) return;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) throw new Error('the postgres system user is missing; reinstall the postgresql package');
  chownSync(path, Number(id.stdout.trim()), Number(gid.stdout.trim()));
}

export function pgPid(layout: StackLayout, region: string): number | undefined {
  const file = join(pgDataDir(layout, region), 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && isAlive(pid) ? pid : undefined;
}

/** The major version a data directory was initialised by, if it was. */
function dataDirMajor(dir: string): string | undefined {
  const file = join(dir, 'PG_VERSION');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

function initCluster(layout: StackLayout, region: string, log: Log, dir = pgDataDir(layout, region), bin = PG_BIN): void {
  if (existsSync(join(dir, 'PG_VERSION'))) return;
  log(`initialising PostgreSQL cluster for ${region}`);
  // Parents must stay traversable by the postgres user; only the data dir itself is 0700.
  mkdirSync(join(layout.stateDir, 'pg'), { recursive: true, mode: 0o755 });
  chmodSync(join(layout.stateDir, 'pg'), 0o755);
  mkdirSync(dir, { mode: 0o700 });
  pgOwn(dir);
  const pwFile = join(layout.stateDir, 'pg', `.pw-${region}`);
  writeFileSync(pwFile, PG_PASSWORD + '\n', { mode: 0o600 });
  pgOwn(pwFile);
  asPgUser(join(bin, 'initdb'), ['-D', dir, '-U', PG_USER, `--pwfile=${pwFile}`, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8'], `initdb for ${region}`);
  const conf = Object.entries(PG_SETTINGS).map(([k, v]) => `${k} = ${v}`).join('\n');
  appendFileSync(join(dir, 'postgresql.conf'), `\n# regionsync stack\n${conf}\nunix_socket_directories = '${dir}'\n`);
  appendFileSync(join(dir, 'pg_hba.conf'), '\nhost replication all 127.0.0.1/32 scram-sha-256\n');
}

export async function startPostgres(layout: StackLayout, i: number, log: Log): Promise<void> {
  const region = layout.regions[i]!;
  const dir = pgDataDir(layout, region);
  const { major, bin } = pgFor(layout, i);
  // A cluster of another major version (the region list or VERSIONS changed) holds only
  // test data: it is replaced, not upgraded.
  const found = dataDirMajor(dir);
  if (found !== undefined && found !== major) {
    log(`PostgreSQL ${region} was initialised by version ${found}, the stack runs ${major} there: re-initialising it`);
    await stopPostgres(layout, region);
    rmSync(dir, { recursive: true, force: true });
  }
  initCluster(layout, region, log, dir, bin);
  if (pgPid(layout, region) === undefined) {
    await assertPortFree(layout.ports.postgres(i), `PostgreSQL ${region}`);
    log(`starting PostgreSQL ${region} on port ${layout.ports.postgres(i)}`);
    const logFile = join(layout.stateDir, 'logs', `postgres-${region}.log`);
    mkdirSync(join(layout.stateDir, 'logs'), { recursive: true });
    if (!existsSync(logFile)) writeFileSync(logFile, '');
    pgOwn(logFile);
    asPgUser(join(bin, 'pg_ctl'), ['-D', dir, '-l', logFile, '-w', '-t', '120', '-o', `-p ${layout.ports.postgres(i)}`, 'start'], `starting PostgreSQL ${major} for ${region}`);
  }
  await waitFor(`PostgreSQL ${region}`, async () => {
    const c = new pg.Client({ connectionString: pgUrl(layout, i).replace(/\/regionsync$/, '/postgres') });
    await c.connect();
    try {
      const r = await c.query('select 1 from pg_database where datname = $1', [PG_DATABASE]);
      if (r.rowCount === 0) await c.query(`create database ${PG_DATABASE}`);
      return true;
    } finally {
      await c.end();
    }
  }, 60_000);
}

/** `immediate` is a crash as far as the data goes: no checkpoint, recovery from WAL on start. */
export async function stopPostgres(layout: StackLayout, region: string, mode: 'fast' | 'immediate' = 'fast'): Promise<boolean> {
  if (pgPid(layout, region) === undefined) return false;
  const dir = pgDataDir(layout, region);
  const pgCtl = join(pgBinForMajor(layout, dataDirMajor(dir)), 'pg_ctl');
  try {
    asPgUser(pgCtl, ['-D', dir, '-m', mode, '-w', '-t', '60', 'stop'], `stopping PostgreSQL for ${region}`);
  } catch (err) {
    if (mode === 'immediate') throw err;
    // A fast shutdown waits for every walsender's client to confirm the end of WAL, so a
    // replication client that is still connected can hold it forever. Say who, then make
    // sure the machine is left clean anyway.
    const who = stragglers(pgPid(layout, region));
    asPgUser(pgCtl, ['-D', dir, '-m', 'immediate', '-w', '-t', '60', 'stop'], `stopping PostgreSQL for ${region} (immediate)`);
    throw new Error(`${(err as Error).message}\nstill connected when the fast shutdown gave up:\n${who}\nstopped it with an immediate shutdown instead`);
  }
  return true;
}

/** The server's remaining processes and the regionsync processes that may be their clients. */
function stragglers(postmaster: number | undefined): string {
  const ps = spawnSync('ps', ['-eo', 'pid,ppid,etimes,args'], { encoding: 'utf8' }).stdout ?? '';
  const lines = ps.split('\n').filter((l) => {
    const [, ppid] = l.trim().split(/\s+/);
    return (postmaster !== undefined && Number(ppid) === postmaster) || /apps\/(agent|coordinator)|regionsync-agent/.test(l);
  });
  return lines.map((l) => `  ${l.trim().slice(0, 200)}`).join('\n') || '  (none found)';
}

export async function postgresHealth(layout: StackLayout, i: number): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: pgUrl(layout, i), connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    const r = await c.query<{ wal_level: string }>('show wal_level');
    return r.rows[0]?.wal_level === 'logical' ? undefined : `wal_level is ${r.rows[0]?.wal_level}`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * A PostgreSQL cluster outside the region list, for tests that need a server with its own
 * environment (e.g. a skewed clock under libfaketime). Stopped with stopScratchPostgres.
 */
export async function startScratchPostgres(layout: StackLayout, name: string, port: number, env: Record<string, string>, log: Log = () => undefined): Promise<string> {
  const dir = join(layout.stateDir, 'pg', `scratch-${name}`);
  initCluster(layout, `scratch-${name}`, log, dir);
  const pidFile = join(dir, 'postmaster.pid');
  if (existsSync(pidFile) && isAlive(Number(readFileSync(pidFile, 'utf8').split('\n')[0]))) await stopScratchPostgres(layout, name);
  const logFile = join(layout.stateDir, 'logs', `postgres-scratch-${name}.log`);
  mkdirSync(join(layout.stateDir, 'logs'), { recursive: true });
  if (!existsSync(logFile)) writeFileSync(logFile, '');
  pgOwn(logFile);
  asPgUser(join(PG_BIN, 'pg_ctl'), ['-D', dir, '-l', logFile, '-w', '-t', '120', '-o', `-p ${port}`, 'start'], `starting scratch PostgreSQL ${name}`, env);
  const url = `postgres://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${port}/${PG_DATABASE}`;
  await waitFor(`scratch PostgreSQL ${name}`, async () => {
    const c = new pg.Client({ connectionString: url.replace(/\/regionsync$/, '/postgres') });
    await c.connect();
    try {
      const r = await c.query('select 1 from pg_database where datname = $1', [PG_DATABASE]);
      if (r.rowCount === 0) await c.query(`create database ${PG_DATABASE}`);
      return true;
    } finally {
      await c.end();
    }
  }, 60_000);
  return url;
}

export async function stopScratchPostgres(layout: StackLayout, name: string): Promise<void> {
  const dir = join(layout.stateDir, 'pg', `scratch-${name}`);
  if (!existsSync(join(dir, 'postmaster.pid'))) return;
  asPgUser(join(PG_BIN, 'pg_ctl'), ['-D', dir, '-m', 'fast', '-w', '-t', '60', 'stop'], `stopping scratch PostgreSQL ${name}`);
}
