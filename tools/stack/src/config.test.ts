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

  it('keeps the default ports below the kernel ephemeral range, where client sockets could hold them', () => {
    const l = resolveLayout({});
    const n = l.regions.length;
    const all = [l.ports.nats, l.ports.natsMonitor, l.ports.kafkaInternal, l.ports.kafkaController, l.ports.toxiproxy, l.ports.minio, l.ports.minioConsole];
    for (let i = 0; i < n; i++) all.push(l.ports.postgres(i), l.ports.redis(i), l.ports.kuboApi(i), l.ports.kuboSwarm(i), l.ports.kuboGateway(i), l.ports.kafkaRegion(i), l.ports.natsProxy(i), l.ports.kafkaProxy(i));
    // Linux's default net.ipv4.ip_local_port_range starts at 32768.
    expect(Math.max(...all)).toBeLessThan(32768);
    expect(Math.min(...all)).toBeGreaterThanOrEqual(1024);
  });

  it('rejects a bad port base', () => {
    expect(() => resolveLayout({ REGIONSYNC_PORT_BASE: '80' })).toThrow(/REGIONSYNC_PORT_BASE/);
  });
});
