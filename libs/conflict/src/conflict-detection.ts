import { compareVersions } from './version.js';
import { sawVersion } from './vector-clock.js';
import type { RowState, VectorClock, Version } from './types.js';

/**
 * Is the incoming write concurrent with the local row's last write, i.e. a conflict to
 * report? True when the local version came from another region and the incoming
 * writer's vector clock had not seen it.
 *
 * Without `localWriterVclock` a causally older write that merely arrives late (its
 * writer could not have seen the newer local one) is indistinguishable from a truly
 * concurrent one and is reported; pass the clock stored with the local version to
 * also require that the local writer had not seen the incoming one.
 */
export function detectConcurrent(
  local: RowState | undefined,
  incomingVersion: Version,
  incomingVclock: VectorClock,
  localWriterVclock?: VectorClock,
): boolean {
  if (local === undefined) return false;
  // One region's writes are totally ordered by its own HLC: never a conflict.
  if (local.version.region === incomingVersion.region) return false;
  if (sawVersion(incomingVclock, local.version)) return false;
  if (localWriterVclock !== undefined && sawVersion(localWriterVclock, incomingVersion)) return false;
  return true;
}

/**
 * Which side the row-level rule keeps: the remote only when strictly newer. Reporting
 * only — mergeRow already applies the same rule (per column for column-lww).
 */
export function resolveConflict(local: { version: Version }, incoming: { version: Version }): 'local' | 'remote' {
  return compareVersions(incoming.version, local.version) > 0 ? 'remote' : 'local';
}
