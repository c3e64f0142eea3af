import { describe, expect, it } from 'vitest';
import { DEFAULT_REGIONS, parseRegions, resolveLayout } from './config.js';

describe('stack layout', () => {
  it('defaults to three regions and accepts a configured list', () => {
    expect(parseRegions(undefined)).toEqual([...DEFAULT_REGIONS]);
    expect(parseRegions('us-east-1, ap-southeast-1')).toEqual(['us-east-1', 'ap-southeast-1']);
  });

  it('rejects bad region lists with a message naming the variable and the problem', () => {
    expect(() => parseRegions('US_EAST')).toThrow(/REGIONSYNC_REGIONS: "US_EAST" is not a region name/);
    expect(() => parseRegions('a-1,a-1')).toThrow(/listed twice/);
  });

  it('gives every service of every region its own port', () => {
    const l = resolveLayout({ REGIONSYNC_REGIONS: Array.from({ length: 16 }, (_, i) => `r-${i}`).join(',') });
    const p = l.ports;
    const all = [p.nats, p.natsMonitor, p.kafkaInternal, p.kafkaController, p.toxiproxy, p.minio, p.minioConsole,
      ...l.regions.flatMap((_, i) => [p.postgres(i), p.redis(i), p.kuboApi(i), p.kuboSwarm(i), p.kuboGateway(i), p.kafkaRegion(i), p.natsProxy(i), p.kafkaProxy(i)])];
    expect(new Set(all).size).toBe(all.length);
  });

  it('rejects a bad port base', () => {
    expect(() => resolveLayout({ REGIONSYNC_PORT_BASE: '80' })).toThrow(/REGIONSYNC_PORT_BASE/);
  });
});
