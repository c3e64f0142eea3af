// Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014). Timestamps
// stay close to physical time but never go backwards and always exceed every
// timestamp this node has observed, which is what makes "a write made after seeing
// another write wins over it" hold even when this host's clock is behind.
import { ConflictError } from './errors.js';
import { HLC_MAX_LOGICAL, HLC_ZERO, formatHlc, parseHlc, type HlcParts } from './hlc-format.js';
import type { HlcString } from './types.js';

export interface HybridLogicalClockOptions {
  /** Physical clock in ms since the epoch; injectable for tests. Defaults to Date.now. */
  now?: () => number;
  /** Largest tolerated lead of a remote timestamp over our physical clock. */
  maxSkewMs: number;
  /**
   * Last timestamp issued before a restart. Without it a host whose clock stepped
   * back across a restart could issue timestamps below ones it already handed out.
   */
  initial?: HlcString;
}

export type SkewCheck = { ok: true } | { ok: false; skewMs: number };

/** Is `remote`'s wall time within `maxSkewMs` ahead of `nowMs`? Lagging remotes are always fine. */
export function checkSkew(remote: HlcString, nowMs: number, maxSkewMs: number): SkewCheck {
  const skewMs = parseHlc(remote).wallMs - nowMs;
  return skewMs > maxSkewMs ? { ok: false, skewMs } : { ok: true };
}

export class HybridLogicalClock {
  private readonly physical: () => number;
  private readonly maxSkewMs: number;
  private last: HlcParts;

  constructor(opts: HybridLogicalClockOptions) {
    if (!Number.isFinite(opts.maxSkewMs) || opts.maxSkewMs < 0) {
      throw new RangeError('maxSkewMs: expected a finite number >= 0');
    }
    this.physical = opts.now ?? Date.now;
    this.maxSkewMs = opts.maxSkewMs;
    this.last = parseHlc(opts.initial ?? HLC_ZERO);
  }

  /** Timestamp for a local event or commit; strictly greater than every earlier result. */
  now(): HlcString {
    const pt = this.readPhysical();
    this.last = pt > this.last.wallMs ? { wallMs: pt, logical: 0 } : bump(this.last.wallMs, this.last.logical + 1);
    return formatHlc(this.last);
  }

  /**
   * Merge a received timestamp; the result (and every later now()) is greater than it.
   * Throws RS_REPLICATION_CLOCK_SKEW without touching the clock when the remote is too
   * far ahead: adopting it would drag this region's clock forward by the skew, and
   * ignoring it would let a causally later local write lose to it.
   */
  observe(remote: HlcString): HlcString {
    const r = parseHlc(remote);
    const pt = this.readPhysical();
    const skewMs = r.wallMs - pt;
    if (skewMs > this.maxSkewMs) {
      throw new ConflictError(
        'RS_REPLICATION_CLOCK_SKEW',
        `remote timestamp is ${skewMs} ms ahead of the local clock, limit is ${this.maxSkewMs} ms; fix time sync`,
      );
    }
    const l = this.last;
    const wallMs = Math.max(l.wallMs, r.wallMs, pt);
    let logical: number;
    if (wallMs === l.wallMs && wallMs === r.wallMs) logical = Math.max(l.logical, r.logical) + 1;
    else if (wallMs === l.wallMs) logical = l.logical + 1;
    else if (wallMs === r.wallMs) logical = r.logical + 1;
    else logical = 0;
    this.last = bump(wallMs, logical);
    return formatHlc(this.last);
  }

  /** Last issued timestamp, without ticking. */
  peek(): HlcString {
    return formatHlc(this.last);
  }

  private readPhysical(): number {
    const pt = this.physical();
    if (!Number.isFinite(pt)) throw new RangeError('physical clock returned a non-finite value');
    return Math.max(0, Math.floor(pt));
  }
}

// The counter has 6 digits; on overflow borrow the next millisecond rather than fail,
// which keeps the order and only runs ahead of physical time by 1 ms per million events.
function bump(wallMs: number, logical: number): HlcParts {
  return logical > HLC_MAX_LOGICAL ? { wallMs: wallMs + 1, logical: 0 } : { wallMs, logical };
}
