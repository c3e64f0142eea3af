import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** A long-running process the stack owns, tracked by a pid file so `down` stops only its own. */
export interface ManagedProcess {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function pidFile(runDir: string, name: string): string {
  return join(runDir, `${name}.pid`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pid from the file, but only if that process is alive and still runs the recorded command. */
export function runningPid(file: string, expectInCmdline?: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]?.trim());
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  if (expectInCmdline !== undefined) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes(expectInCmdline)) return undefined;
    } catch {
      return undefined;
    }
  }
  return pid;
}

export function startDetached(runDir: string, logDir: string, p: ManagedProcess): number {
  mkdirSync(runDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const log = openSync(join(logDir, `${p.name}.log`), 'a');
  const child = spawn(p.command, p.args, {
    cwd: p.cwd,
    env: p.env ?? process.env,
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${p.name} (${p.command})`);
  child.unref();
  writeFileSync(pidFile(runDir, p.name), `${child.pid}\n${p.command}\n`);
  return child.pid;
}

export async function stopPid(pid: number, timeoutMs = 30_000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await delay(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export async function stopManaged(runDir: string, name: string, expect: string): Promise<boolean> {
  const file = pidFile(runDir, name);
  const pid = runningPid(file, expect);
  if (pid !== undefined) await stopPid(pid);
  rmSync(file, { force: true });
  return pid !== undefined;
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `check` until it returns true or the deadline passes; the last error explains a failure. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, logHint?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await delay(250);
  }
  const reason = last instanceof Error ? `: ${last.message}` : '';
  throw new Error(`${what} did not become ready within ${Math.round(timeoutMs / 1000)} s${reason}${logHint ? ` (see ${logHint})` : ''}`);
}

export function run(command: string, args: string[], opts: SpawnSyncOptions & { what: string }): string {
  const res = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (res.error) throw new Error(`${opts.what}: could not run ${command}: ${res.error.message}`);
  if (res.status !== 0) {
    const out = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${opts.what} failed (${command} exited ${res.status}):\n${out}`);
  }
  return String(res.stdout ?? '');
}

export function ensureDir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}

export function ensureParent(path: string): string {
  mkdirSync(dirname(path), { recursive: true });
  return path;
}

/** Fail early and clearly when a port we need belongs to somebody else. */
export async function assertPortFree(port: number, what: string): Promise<void> {
  const { createServer } = await import('node:net');
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', () => reject(new Error(`${what}: port ${port} is already in use by another process (another regionsync stack? stop it with \`npm run stack -- down\` in that checkout, or choose other ports with REGIONSYNC_PORT_BASE)`)));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
  });
}
