import { describe, expect, it } from 'vitest';
import { compareClocks, dominates, mergeClocks, observeInClock, sawVersion } from './vector-clock.js';

const h = (n: number) => `${String(n).padStart(15, '0')}.000000`;

describe('vector clocks', () => {
  it('merges pointwise and treats missing entries as nothing seen', () => {
    expect(mergeClocks({ a: h(1), b: h(5) }, { b: h(3), c: h(2) })).toEqual({ a: h(1), b: h(5), c: h(2) });
  });

  it('compares', () => {
    expect(compareClocks({ a: h(1) }, { a: h(1) })).toBe('equal');
    expect(compareClocks({ a: h(1) }, { a: h(2) })).toBe('before');
    expect(compareClocks({ a: h(1) }, { a: h(1), b: h(1) })).toBe('before');
    expect(compareClocks({ a: h(2), b: h(1) }, { a: h(1) })).toBe('after');
    expect(compareClocks({ a: h(2) }, { b: h(1) })).toBe('concurrent');
    expect(compareClocks({}, {})).toBe('equal');
  });

  it('dominates means after or equal', () => {
    expect(dominates({ a: h(2) }, { a: h(1) })).toBe(true);
    expect(dominates({ a: h(2) }, { a: h(2) })).toBe(true);
    expect(dominates({ a: h(2) }, { b: h(1) })).toBe(false);
  });

  it('observeInClock never moves an entry backwards and does not mutate', () => {
    const vc = { a: h(5) };
    expect(observeInClock(vc, 'a', h(3))).toEqual({ a: h(5) });
    expect(observeInClock(vc, 'b', h(3))).toEqual({ a: h(5), b: h(3) });
    expect(vc).toEqual({ a: h(5) });
  });

  it('sawVersion', () => {
    expect(sawVersion({ a: h(5) }, { hlc: h(5), region: 'a' })).toBe(true);
    expect(sawVersion({ a: h(5) }, { hlc: h(6), region: 'a' })).toBe(false);
    expect(sawVersion({ b: h(9) }, { hlc: h(1), region: 'a' })).toBe(false);
  });
});
