import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { StackLayout } from '../config.js';
import type { Log } from '../install.js';
import { assertPortFree, ensureDir, pidFile, runningPid, startDetached, stopManaged, waitFor } from '../process.js';

export const redisName = (region: string) => `redis-${region}`;
export const redisUrl = (layout: StackLayout, i: number) => `redis://127.0.0.1:${layout.ports.redis(i)}/0`;

export async function startRedis(layout: StackLayout, i: number, log: Log): Promise<void> {
  const region = layout.regions[i]!;
  const run = join(layout.stateDir, 'run');
  if (runningPid(pidFile(run, redisName(region)), 'redis-server') === undefined) {
    await assertPortFree(layout.ports.redis(i), `Redis ${region}`);
    log(`starting Redis ${region} on port ${layout.ports.redis(i)}`);
    const dir = ensureDir(join(layout.stateDir, 'redis', region));
    startDetached(run, join(layout.stateDir, 'logs'), {
      name: redisName(region),
      command: 'redis-server',
      args: ['--port', String(layout.ports.redis(i)), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory', '256mb', '--maxmemory-policy', 'allkeys-lru', '--daemonize', 'no'],
    });
  }
  await waitFor(`Redis ${region}`, async () => (await redisHealth(layout, i)) === undefined, 30_000);
}

export const stopRedis = (layout: StackLayout, region: string) => stopManaged(join(layout.stateDir, 'run'), redisName(region), 'redis-server');

export async function redisHealth(layout: StackLayout, i: number): Promise<string | undefined> {
  const r = new Redis(redisUrl(layout, i), { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG' ? undefined : 'no PONG';
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    r.disconnect();
  }
}
