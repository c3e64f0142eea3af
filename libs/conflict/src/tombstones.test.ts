import { describe, expect, it } from 'vitest';
import { DEFAULT_TOMBSTONE_RETENTION_MS, canDropTombstone } from './tombstones.js';

const h = (n: number) => `${String(n).padStart(15, '0')}.000000`;
const tomb = { hlc: h(1000), region: 'eu-west-1' };

describe('canDropTombstone', () => {
  it('uses the stable cut when one is given', () => {
    const nowMs = 1000 + 30 * DEFAULT_TOMBSTONE_RETENTION_MS;
    expect(canDropTombstone(tomb, { nowMs, stableVclock: { 'eu-west-1': h(1000), 'us-east-1': h(2000) } })).toBe(true);
    // One region still behind: a change older than the tombstone may be in flight, however old it is.
    expect(canDropTombstone(tomb, { nowMs, stableVclock: { 'eu-west-1': h(5000), 'us-east-1': h(999) } })).toBe(false);
    // The tombstone's own region is unknown to the cut.
    expect(canDropTombstone(tomb, { nowMs, stableVclock: { 'us-east-1': h(5000) } })).toBe(false);
    expect(canDropTombstone(tomb, { nowMs, stableVclock: {} })).toBe(false);
  });

  it('falls back to the conservative retention', () => {
    expect(DEFAULT_TOMBSTONE_RETENTION_MS).toBe(7 * 24 * 3600 * 1000);
    expect(canDropTombstone(tomb, { nowMs: 1000 + DEFAULT_TOMBSTONE_RETENTION_MS - 1 })).toBe(false);
    expect(canDropTombstone(tomb, { nowMs: 1000 + DEFAULT_TOMBSTONE_RETENTION_MS })).toBe(true);
    expect(canDropTombstone(tomb, { nowMs: 1100, retentionMs: 100 })).toBe(true);
  });
});
