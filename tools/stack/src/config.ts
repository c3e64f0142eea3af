import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_REGIONS = ['us-east-1', 'eu-west-1', 'eu-central-1'] as const;

/** Where everything lives and which ports each service uses. Pure, derived from env. */
export interface StackLayout {
  repoRoot: string;
  stateDir: string; // runtime data, logs, pid files (git-ignored)
  cacheDir: string; // built binaries and jars, keyed by version (git-ignored by default)
  regions: string[];
  ports: StackPorts;
}

export interface StackPorts {
  nats: number;
  natsMonitor: number;
  kafkaInternal: number;
  kafkaController: number;
  toxiproxy: number;
  minio: number;
  minioConsole: number;
  postgres(i: number): number;
  redis(i: number): number;
  kuboApi(i: number): number;
  kuboSwarm(i: number): number;
  kuboGateway(i: number): number;
  kafkaRegion(i: number): number; // broker listener dedicated to one region (behind its proxy)
  natsProxy(i: number): number;
  kafkaProxy(i: number): number;
}

const REGION_RE = /^[a-z][a-z0-9-]{1,62}$/;
const MAX_REGIONS = 16;

export function findRepoRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  while (!existsSync(join(dir, 'nx.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the regionsync workspace root (no nx.json above ' + from + ')');
    dir = up;
  }
  return dir;
}

export function parseRegions(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [...DEFAULT_REGIONS];
  const regions = raw.split(',').map((r) => r.trim()).filter((r) => r.length > 0);
  for (const r of regions) {
    if (!REGION_RE.test(r)) throw new Error(`REGIONSYNC_REGIONS: "${r}" is not a region name (expected lowercase letters, digits and dashes, e.g. eu-west-1)`);
  }
  if (new Set(regions).size !== regions.length) throw new Error('REGIONSYNC_REGIONS: a region is listed twice');
  if (regions.length < 1 || regions.length > MAX_REGIONS) throw new Error(`REGIONSYNC_REGIONS: expected 1 to ${MAX_REGIONS} regions, got ${regions.length}`);
  return regions;
}

/**
 * Default first port. The stack uses base + 4001 to base + 9299 or so; from 20000 that stays
 * below Linux's ephemeral range (32768-60999 by default). Inside it (the old default 40000),
 * a loopback client connection of the stack's own health checks can hold a port a service
 * is about to listen on: a clean-clone CI failed once with Toxiproxy's
 * `bind: address already in use` on a port nothing listened on.
 */
export const DEFAULT_PORT_BASE = 20000;

export function resolveLayout(env: NodeJS.ProcessEnv = process.env): StackLayout {
  const repoRoot = findRepoRoot();
  const stateDir = resolve(env.REGIONSYNC_STACK_DIR ?? join(repoRoot, '.stack'));
  const cacheDir = resolve(env.REGIONSYNC_CACHE ?? join(stateDir, 'cache'));
  const b = Number(env.REGIONSYNC_PORT_BASE ?? DEFAULT_PORT_BASE);
  if (!Number.isInteger(b) || b < 1024 || b > 60000) throw new Error('REGIONSYNC_PORT_BASE: expected an integer between 1024 and 60000');
  const ports: StackPorts = {
    nats: b + 4222,
    natsMonitor: b + 8222,
    kafkaInternal: b + 9092,
    kafkaController: b + 9093,
    toxiproxy: b + 8474,
    minio: b + 9000,
    minioConsole: b + 9001,
    postgres: (i) => b + 5432 + i,
    redis: (i) => b + 6379 + i,
    kuboApi: (i) => b + 5001 + i * 10,
    kuboSwarm: (i) => b + 4001 + i * 10,
    kuboGateway: (i) => b + 8080 + i * 10,
    kafkaRegion: (i) => b + 9100 + i,
    natsProxy: (i) => b + 4300 + i,
    kafkaProxy: (i) => b + 9200 + i,
  };
  return { repoRoot, stateDir, cacheDir, regions: parseRegions(env.REGIONSYNC_REGIONS), ports };
}
