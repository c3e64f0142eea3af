import { describe, expect, it } from 'vitest';
import { percentile, round, sentAt, stampedPayload } from './bus-stats.js';

describe('bench stats', () => {
  it('computes nearest-rank percentiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile([], 50)).toBe(0);
    expect(round(1.23456)).toBe(1.23);
  });
  it('stamps and reads the send time', () => {
    const p = stampedPayload(1024);
    expect(p.byteLength).toBe(1024);
    expect(Math.abs(sentAt(p) - Date.now())).toBeLessThan(1_000);
  });
});
