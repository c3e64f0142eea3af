import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatHlc } from './hlc-format.js';
import { compareClocks, dominates, mergeClocks, observeInClock, sawVersion } from './vector-clock.js';
import type { VectorClock } from './types.js';

const REGIONS = ['ap-southeast-1', 'eu-west-1', 'us-east-1', 'sa-east-1'];
const hlcArb = fc.tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 2 })).map(([wallMs, logical]) => formatHlc({ wallMs, logical }));
const clockArb: fc.Arbitrary<VectorClock> = fc.dictionary(fc.constantFrom(...REGIONS), hlcArb, { maxKeys: REGIONS.length });
const mirror = { before: 'after', after: 'before', equal: 'equal', concurrent: 'concurrent' } as const;

describe('vector clock laws', () => {
  it('merge is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
        expect(mergeClocks(a, b)).toEqual(mergeClocks(b, a));
        expect(mergeClocks(mergeClocks(a, b), c)).toEqual(mergeClocks(a, mergeClocks(b, c)));
        expect(mergeClocks(a, a)).toEqual(a);
      }),
      { numRuns: 500 },
    );
  });

  it('the merge is an upper bound of both inputs', () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        const m = mergeClocks(a, b);
        expect(dominates(m, a) && dominates(m, b)).toBe(true);
        expect(['before', 'equal']).toContain(compareClocks(a, m));
      }),
      { numRuns: 500 },
    );
  });

  it('compare is antisymmetric and agrees with dominates', () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        const ab = compareClocks(a, b);
        expect(compareClocks(b, a)).toBe(mirror[ab]);
        expect(dominates(a, b)).toBe(ab === 'after' || ab === 'equal');
      }),
      { numRuns: 500 },
    );
  });

  it('observing never forgets what was seen', () => {
    fc.assert(
      fc.property(clockArb, fc.constantFrom(...REGIONS), hlcArb, hlcArb, (vc, region, seen, probe) => {
        const after = observeInClock(vc, region, seen);
        expect(sawVersion(after, { region, hlc: seen })).toBe(true);
        expect(dominates(after, vc)).toBe(true);
        if (sawVersion(vc, { region, hlc: probe })) expect(sawVersion(after, { region, hlc: probe })).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
