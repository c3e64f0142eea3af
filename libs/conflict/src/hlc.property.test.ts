// Causality under clock skew: timestamps never go backwards, whatever the physical
// clock does, and a timestamp issued after observing a remote one is greater than it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConflictError } from './errors.js';
import { formatHlc, parseHlc } from './hlc-format.js';
import { HybridLogicalClock } from './hlc.js';

type Step = { kind: 'tick' } | { kind: 'jump'; deltaMs: number } | { kind: 'observe'; aheadMs: number; logical: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.constant<Step>({ kind: 'tick' }),
  fc.integer({ min: -5_000, max: 1_000 }).map<Step>((deltaMs) => ({ kind: 'jump', deltaMs })),
  fc.record({ aheadMs: fc.integer({ min: -3_000, max: 1_000 }), logical: fc.integer({ min: 0, max: 50 }) }).map<Step>((s) => ({ kind: 'observe', ...s })),
);

describe('HybridLogicalClock properties', () => {
  it('is strictly monotonic, stays above everything it observed, and refuses excessive skew', () => {
    const maxSkewMs = 500;
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 60 }), (steps) => {
        let physical = 1_700_000_000_000;
        const hlc = new HybridLogicalClock({ now: () => physical, maxSkewMs });
        let last = hlc.peek();
        let highestObserved: string | undefined;
        for (const step of steps) {
          if (step.kind === 'jump') {
            physical = Math.max(0, physical + step.deltaMs);
            continue;
          }
          if (step.kind === 'tick') {
            const t = hlc.now();
            expect(t > last).toBe(true);
            expect(parseHlc(t).wallMs).toBeGreaterThanOrEqual(physical);
            if (highestObserved !== undefined) expect(t > highestObserved).toBe(true);
            last = t;
            continue;
          }
          const remote = formatHlc({ wallMs: Math.max(0, physical + step.aheadMs), logical: step.logical });
          if (step.aheadMs > maxSkewMs) {
            expect(() => hlc.observe(remote)).toThrow(ConflictError);
            expect(hlc.peek()).toBe(last);
            continue;
          }
          const t = hlc.observe(remote);
          expect(t > last).toBe(true);
          expect(t > remote).toBe(true);
          last = t;
          highestObserved = highestObserved === undefined || remote > highestObserved ? remote : highestObserved;
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a reply written after a message wins over it even when the replying host is behind', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 1_000 }), (behindMs, logical) => {
        const senderWall = 1_700_000_000_000;
        const receiver = new HybridLogicalClock({ now: () => senderWall - behindMs, maxSkewMs: 500 });
        const sent = formatHlc({ wallMs: senderWall, logical });
        receiver.observe(sent);
        expect(receiver.now() > sent).toBe(true);
      }),
    );
  });
});
