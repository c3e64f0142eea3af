// When may a tombstone be forgotten? Only once no change older than it can still
// arrive anywhere: a late older update meeting no tombstone would revive the row.
import { parseHlc } from './hlc-format.js';
import type { VectorClock, Version } from './types.js';

/**
 * Used only when the coordinator has not published a stable cut. Longer than any
 * partition we expect a region to survive without a full resync, so a change older
 * than the tombstone cannot still be queued when it is dropped.
 */
export const DEFAULT_TOMBSTONE_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

export interface TombstoneGcOptions {
  /**
   * Coordinator's stable cut: per region, the HLC up to which that region's changes
   * have been applied in every region. Precise, so it replaces the time rule entirely.
   */
  stableVclock?: VectorClock;
  nowMs: number;
  retentionMs?: number;
}

export function canDropTombstone(tombstoneVersion: Version, opts: TombstoneGcOptions): boolean {
  if (opts.stableVclock !== undefined) {
    const entries = Object.entries(opts.stableVclock);
    // Every region (the tombstone's own included) must be past it: then the tombstone
    // is everywhere and any change it must beat has already been applied everywhere.
    // A region missing from the cut is unknown, so nothing can be dropped.
    if (entries.length === 0 || opts.stableVclock[tombstoneVersion.region] === undefined) return false;
    return entries.every(([, hlc]) => hlc >= tombstoneVersion.hlc);
  }
  // A partitioned region holds back a stable cut, but not this rule: the retention must
  // exceed the longest outage handled without a resync.
  const retentionMs = opts.retentionMs ?? DEFAULT_TOMBSTONE_RETENTION_MS;
  return opts.nowMs - parseHlc(tombstoneVersion.hlc).wallMs >= retentionMs;
}
