import { ConflictError } from './errors.js';
import { isHlc } from './hlc-format.js';
import type { Version } from './types.js';

/** Same rule as libs/protocol's region names. */
export const REGION_PATTERN = /^[a-z][a-z0-9-]{1,62}$/;

/**
 * Total order on versions: HLC first, then region name as tie-break. Plain code-unit
 * comparison (not localeCompare) so every host, whatever its locale, agrees.
 */
export function compareVersions(a: Version, b: Version): -1 | 0 | 1 {
  if (a.hlc !== b.hlc) return a.hlc < b.hlc ? -1 : 1;
  if (a.region !== b.region) return a.region < b.region ? -1 : 1;
  return 0;
}

/** The newer of two versions (the first on a tie). */
export function maxVersion(a: Version, b: Version): Version {
  return compareVersions(b, a) > 0 ? b : a;
}

export function isVersion(value: unknown): value is Version {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return isHlc(v['hlc']) && typeof v['region'] === 'string' && REGION_PATTERN.test(v['region']);
}

/** Throws RS_CONFLICT_INVALID_VERSION naming the field; values are not echoed. */
export function validateVersion(value: unknown, field = 'version'): asserts value is Version {
  if (typeof value !== 'object' || value === null) {
    throw new ConflictError('RS_CONFLICT_INVALID_VERSION', `${field}: expected an object { hlc, region }`);
  }
  const v = value as Record<string, unknown>;
  if (!isHlc(v['hlc'])) {
    throw new ConflictError('RS_CONFLICT_INVALID_VERSION', `${field}.hlc: expected 15 digits, '.', 6 digits`);
  }
  if (typeof v['region'] !== 'string' || !REGION_PATTERN.test(v['region'])) {
    throw new ConflictError('RS_CONFLICT_INVALID_VERSION', `${field}.region: expected a region name matching ${REGION_PATTERN.source}`);
  }
}
