import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveLayout, type StackLayout } from './config.js';
import { ensureInstalled, type Log } from './install.js';
import { delay, isAlive } from './process.js';
import { kafkaHealth, startKafka, stopKafka } from './services/kafka.js';
import { kuboHealth, startKubo, stopKubo } from './services/kubo.js';
import { minioHealth, startMinio, stopMinio } from './services/minio.js';
import { natsHealth, startNats, stopNats } from './services/nats.js';
import { postgresHealth, startPostgres, stopPostgres } from './services/postgres.js';
import { redisHealth, startRedis, stopRedis } from './services/redis.js';
import { startToxiproxy, stopToxiproxy, toxiproxyHealth } from './services/toxiproxy.js';
import { stackEnv, type StackEnv } from './stack-env.js';

export interface ServiceStatus {
  service: string;
  region?: string;
  healthy: boolean;
  detail?: string;
}

const quiet: Log = () => undefined;

/** Serialise concurrent `up`/`down` calls (several test processes may ask at once). */
async function withLock<T>(layout: StackLayout, fn: () => Promise<T>): Promise<T> {
  mkdirSync(layout.stateDir, { recursive: true });
  const dir = join(layout.stateDir, 'lock');
  const deadline = Date.now() + 60 * 60_000;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      break;
    } catch {
      let holder = NaN;
      try {
        holder = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      } catch {
        // being created right now
      }
      if (Number.isInteger(holder) && !isAlive(holder)) rmSync(dir, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`stack lock ${dir} held too long`);
      await delay(500);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Install what is missing and start every service that is not running. Idempotent. */
export async function up(opts: { log?: Log; layout?: StackLayout } = {}): Promise<StackEnv> {
  const layout = opts.layout ?? resolveLayout();
  const log = opts.log ?? quiet;
  return withLock(layout, async () => {
    ensureInstalled(layout, log);
    for (let i = 0; i < layout.regions.length; i++) await startPostgres(layout, i, log);
    for (let i = 0; i < layout.regions.length; i++) await startRedis(layout, i, log);
    await startMinio(layout, log);
    await startKubo(layout, log);
    await startNats(layout, log);
    await startKafka(layout, log);
    await startToxiproxy(layout, log);
    writeFileSync(join(layout.stateDir, 'env.json'), JSON.stringify(stackEnv(layout), null, 2));
    return stackEnv(layout);
  });
}

/** Stop, in reverse order, only the processes this stack started (tracked by pid files). */
export async function down(opts: { log?: Log; layout?: StackLayout } = {}): Promise<string[]> {
  const layout = opts.layout ?? resolveLayout();
  const log = opts.log ?? quiet;
  return withLock(layout, async () => {
    const stopped: string[] = [];
    const failures: string[] = [];
    // One service that will not stop must not leave the others running.
    const stop = async (name: string, fn: () => Promise<boolean>) => {
      try {
        if (await fn()) {
          stopped.push(name);
          log(`stopped ${name}`);
        }
      } catch (err) {
        failures.push((err as Error).message);
      }
    };
    await stop('toxiproxy', () => stopToxiproxy(layout));
    await stop('kafka', () => stopKafka(layout));
    await stop('nats', () => stopNats(layout));
    for (const r of [...layout.regions].reverse()) await stop(`kubo-${r}`, () => stopKubo(layout, r));
    await stop('minio', () => stopMinio(layout));
    for (const r of [...layout.regions].reverse()) await stop(`redis-${r}`, () => stopRedis(layout, r));
    for (const r of [...layout.regions].reverse()) await stop(`postgres-${r}`, () => stopPostgres(layout, r));
    if (failures.length > 0) throw new Error(failures.join('\n'));
    return stopped;
  });
}

export async function status(layout: StackLayout = resolveLayout()): Promise<ServiceStatus[]> {
  const out: ServiceStatus[] = [];
  const add = async (service: string, region: string | undefined, check: Promise<string | undefined>) => {
    const detail = await check;
    out.push({ service, ...(region ? { region } : {}), healthy: detail === undefined, ...(detail ? { detail } : {}) });
  };
  for (const [i, r] of layout.regions.entries()) {
    await add('postgres', r, postgresHealth(layout, i));
    await add('redis', r, redisHealth(layout, i));
    await add('kubo', r, kuboHealth(layout, i));
  }
  await add('minio', undefined, minioHealth(layout));
  await add('nats', undefined, natsHealth(layout));
  await add('kafka', undefined, kafkaHealth(layout));
  await add('toxiproxy', undefined, toxiproxyHealth(layout));
  return out;
}

export function env(layout: StackLayout = resolveLayout()): StackEnv {
  return stackEnv(layout);
}
