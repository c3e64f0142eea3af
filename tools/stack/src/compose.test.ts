import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_REGIONS, findRepoRoot, resolveLayout } from './config.js';
import { PG_SETTINGS } from './services/postgres.js';
import { MODERN_PG_FROM_REGION } from './install.js';
import { VERSIONS } from './versions.js';
import { proxySpecs } from './services/toxiproxy.js';

const root = findRepoRoot();
const compose = parse(readFileSync(join(root, 'docker', 'compose.yml'), 'utf8')) as { services: Record<string, { command?: string | string[]; image?: string }> };

/** The services `npm run stack -- up` runs natively, by the names compose uses. */
function nativeServices(regions: readonly string[]): string[] {
  return [...regions.flatMap((r) => [`postgres-${r}`, `redis-${r}`, `kubo-${r}`]), 'minio', 'nats', 'kafka', 'toxiproxy'].sort();
}

describe('docker/compose.yml mirrors the native stack', () => {
  it('names the same services and regions', () => {
    const names = Object.keys(compose.services).filter((n) => n !== 'minio-buckets').sort();
    expect(names).toEqual(nativeServices(DEFAULT_REGIONS));
  });

  it('starts PostgreSQL with the same settings as the native clusters', () => {
    for (const r of DEFAULT_REGIONS) {
      const cmd = String(compose.services[`postgres-${r}`]?.command);
      for (const [k, v] of Object.entries(PG_SETTINGS)) {
        if (k === 'listen_addresses') continue; // containers listen on their own interface
        expect(cmd, `postgres-${r} ${k}`).toContain(`-c ${k}=${v}`);
      }
    }
  });

  it('runs the same PostgreSQL major version per region (mixed, as mid-upgrade)', () => {
    for (const [i, r] of DEFAULT_REGIONS.entries()) {
      const major = i >= MODERN_PG_FROM_REGION ? VERSIONS.postgresModern.major : VERSIONS.postgresMajor;
      expect(String(compose.services[`postgres-${r}`]?.image), r).toMatch(new RegExp(`^postgres:${major}(\\.|$)`));
    }
  });

  it('has one proxy per region and broker, named as in the native stack', () => {
    const proxies = JSON.parse(readFileSync(join(root, 'docker', 'toxiproxy.json'), 'utf8')) as { name: string }[];
    const layout = { ...resolveLayout({}), regions: [...DEFAULT_REGIONS] };
    expect(proxies.map((p) => p.name).sort()).toEqual(proxySpecs(layout).map((p) => p.name).sort());
  });
});
