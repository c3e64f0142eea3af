import { describe, expect, it } from 'vitest';
import { ConflictError } from './errors.js';
import { HLC_ZERO, formatHlc, parseHlc } from './hlc-format.js';
import { HybridLogicalClock, checkSkew } from './hlc.js';

const at = (wallMs: number, logical = 0) => formatHlc({ wallMs, logical });

function manualClock(start: number) {
  let t = start;
  return { now: () => t, set: (v: number) => (t = v) };
}

describe('hlc format', () => {
  it('pads wall and counter so string order is time order', () => {
    expect(at(1_700_000_000_000, 7)).toBe('001700000000000.000007');
    expect(parseHlc('001700000000000.000007')).toEqual({ wallMs: 1_700_000_000_000, logical: 7 });
    expect(at(9, 999_999) < at(10, 0)).toBe(true);
  });

  it('rejects malformed timestamps with RS_CONFLICT_INVALID_VERSION', () => {
    expect(() => parseHlc('1700000000000.1')).toThrowError(expect.objectContaining({ code: 'RS_CONFLICT_INVALID_VERSION', retryable: false }));
    expect(() => formatHlc({ wallMs: -1, logical: 0 })).toThrow(ConflictError);
  });
});

describe('HybridLogicalClock', () => {
  it('follows physical time when it moves forward', () => {
    const c = manualClock(1000);
    const hlc = new HybridLogicalClock({ now: c.now, maxSkewMs: 100 });
    expect(hlc.peek()).toBe(HLC_ZERO);
    expect(hlc.now()).toBe(at(1000, 0));
    expect(hlc.now()).toBe(at(1000, 1));
    c.set(1005);
    expect(hlc.now()).toBe(at(1005, 0));
    expect(hlc.peek()).toBe(at(1005, 0));
  });

  it('never goes backwards when the physical clock does', () => {
    const c = manualClock(5000);
    const hlc = new HybridLogicalClock({ now: c.now, maxSkewMs: 100 });
    const a = hlc.now();
    c.set(1000);
    const b = hlc.now();
    expect(b > a).toBe(true);
    expect(parseHlc(b)).toEqual({ wallMs: 5000, logical: 1 });
  });

  it('orders a local write after a remote one it observed even when the local clock is behind', () => {
    const c = manualClock(1000);
    const hlc = new HybridLogicalClock({ now: c.now, maxSkewMs: 500 });
    const remote = at(1400, 3);
    const merged = hlc.observe(remote);
    expect(merged).toBe(at(1400, 4));
    expect(hlc.now() > remote).toBe(true);
  });

  it('refuses a remote beyond the skew limit and leaves the clock untouched', () => {
    const c = manualClock(1000);
    const hlc = new HybridLogicalClock({ now: c.now, maxSkewMs: 500 });
    hlc.now();
    const before = hlc.peek();
    let err: unknown;
    try {
      hlc.observe(at(1501));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConflictError);
    expect(err).toMatchObject({ code: 'RS_REPLICATION_CLOCK_SKEW', retryable: false });
    expect((err as Error).message).toMatch(/501 ms ahead.*limit is 500 ms/);
    expect(hlc.peek()).toBe(before);
    expect(hlc.observe(at(1500))).toBe(at(1500, 1));
  });

  it('resumes above a persisted timestamp after a restart', () => {
    const hlc = new HybridLogicalClock({ now: () => 10, maxSkewMs: 0, initial: at(50, 2) });
    expect(hlc.now()).toBe(at(50, 3));
  });

  it('borrows the next millisecond when the logical counter overflows', () => {
    const hlc = new HybridLogicalClock({ now: () => 10, maxSkewMs: 0, initial: at(10, 999_999) });
    expect(hlc.now()).toBe(at(11, 0));
  });

  it('rejects a bad maxSkewMs', () => {
    expect(() => new HybridLogicalClock({ maxSkewMs: -1 })).toThrow(RangeError);
  });
});

describe('checkSkew', () => {
  it('reports how far ahead a remote is', () => {
    expect(checkSkew(at(1500), 1000, 500)).toEqual({ ok: true });
    expect(checkSkew(at(1600), 1000, 500)).toEqual({ ok: false, skewMs: 600 });
    expect(checkSkew(at(10), 1000, 0)).toEqual({ ok: true });
  });
});
