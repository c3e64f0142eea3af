export { ConflictError, type ConflictErrorCode } from './errors.js';
export type {
  CounterContribution,
  HlcString,
  MergeOutcome,
  MergeResult,
  RowChange,
  RowState,
  RowValues,
  TableStrategy,
  VectorClock,
  Version,
} from './types.js';
export {
  HLC_LOGICAL_DIGITS,
  HLC_MAX_LOGICAL,
  HLC_MAX_WALL_MS,
  HLC_PATTERN,
  HLC_WALL_DIGITS,
  HLC_ZERO,
  compareHlc,
  formatHlc,
  isHlc,
  parseHlc,
  type HlcParts,
} from './hlc-format.js';
export { HybridLogicalClock, checkSkew, type HybridLogicalClockOptions, type SkewCheck } from './hlc.js';
export { compareClocks, dominates, mergeClocks, observeInClock, sawVersion, type ClockOrder } from './vector-clock.js';
export { REGION_PATTERN, compareVersions, isVersion, maxVersion, validateVersion } from './version.js';
export { counterValue, mergeRow, mergeStates, stateFromChange, validateStrategy } from './merge.js';
export { BASE_CONTRIBUTION } from './row-lattice.js';
export { detectConcurrent, resolveConflict } from './conflict-detection.js';
export { DEFAULT_TOMBSTONE_RETENTION_MS, canDropTombstone, type TombstoneGcOptions } from './tombstones.js';
