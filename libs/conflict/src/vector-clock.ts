// Vector clocks as plain records. A missing entry means "nothing seen from that
// region", i.e. it behaves like HLC_ZERO, so clocks from regions that joined later
// compare correctly.
import { compareHlc } from './hlc-format.js';
import type { HlcString, VectorClock, Version } from './types.js';

export type ClockOrder = 'before' | 'after' | 'equal' | 'concurrent';

/** Pointwise maximum; keys come out sorted so equal clocks serialise identically. */
export function mergeClocks(a: VectorClock, b: VectorClock): VectorClock {
  const out: VectorClock = {};
  for (const region of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = a[region];
    const y = b[region];
    out[region] = x === undefined ? (y as HlcString) : y === undefined || x >= y ? x : y;
  }
  return out;
}

/** How `a` relates to `b`: 'before' means b has seen everything a has, and more. */
export function compareClocks(a: VectorClock, b: VectorClock): ClockOrder {
  let aAhead = false;
  let bAhead = false;
  for (const region of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[region];
    const y = b[region];
    if (x === y) continue;
    if (y === undefined || (x !== undefined && compareHlc(x, y) > 0)) aAhead = true;
    else bAhead = true;
    if (aAhead && bAhead) return 'concurrent';
  }
  return aAhead ? 'after' : bAhead ? 'before' : 'equal';
}

/** True when `a` has seen everything `b` has (a is after or equal to b). */
export function dominates(a: VectorClock, b: VectorClock): boolean {
  const order = compareClocks(a, b);
  return order === 'after' || order === 'equal';
}

/** Clock after seeing `hlc` from `region`; never moves an entry backwards. Pure. */
export function observeInClock(vc: VectorClock, region: string, hlc: HlcString): VectorClock {
  return mergeClocks(vc, { [region]: hlc });
}

/** Had the holder of `vclock` seen the write stamped `version`? */
export function sawVersion(vclock: VectorClock, version: Version): boolean {
  const seen = vclock[version.region];
  return seen !== undefined && seen >= version.hlc;
}
