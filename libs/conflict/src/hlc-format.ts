// Same wire format as libs/protocol's hlc-format.ts. Fixed-width zero padding makes
// plain string comparison equal to time order, so HLCs compare without parsing.
import { ConflictError } from './errors.js';
import type { HlcString } from './types.js';

export const HLC_WALL_DIGITS = 15;
export const HLC_LOGICAL_DIGITS = 6;
export const HLC_MAX_WALL_MS = 10 ** HLC_WALL_DIGITS - 1;
export const HLC_MAX_LOGICAL = 10 ** HLC_LOGICAL_DIGITS - 1;
export const HLC_PATTERN = /^\d{15}\.\d{6}$/;
/** Sorts before every real timestamp; "nothing seen". */
export const HLC_ZERO: HlcString = `${'0'.repeat(HLC_WALL_DIGITS)}.${'0'.repeat(HLC_LOGICAL_DIGITS)}`;

export interface HlcParts {
  wallMs: number;
  logical: number;
}

export function isHlc(value: unknown): value is HlcString {
  return typeof value === 'string' && HLC_PATTERN.test(value);
}

export function formatHlc({ wallMs, logical }: HlcParts): HlcString {
  if (!Number.isSafeInteger(wallMs) || wallMs < 0 || wallMs > HLC_MAX_WALL_MS) {
    throw new ConflictError('RS_CONFLICT_INVALID_VERSION', `hlc.wallMs: expected an integer between 0 and ${HLC_MAX_WALL_MS}`);
  }
  if (!Number.isSafeInteger(logical) || logical < 0 || logical > HLC_MAX_LOGICAL) {
    throw new ConflictError('RS_CONFLICT_INVALID_VERSION', `hlc.logical: expected an integer between 0 and ${HLC_MAX_LOGICAL}`);
  }
  return `${String(wallMs).padStart(HLC_WALL_DIGITS, '0')}.${String(logical).padStart(HLC_LOGICAL_DIGITS, '0')}`;
}

export function parseHlc(s: string): HlcParts {
  if (!isHlc(s)) {
    // Callers may hand in unchecked input despite the type.
    const raw: unknown = s;
    const shown = typeof raw === 'string' ? `a string of length ${raw.length}` : `a ${typeof raw}`;
    // The offending value is not echoed: it may come from a message body.
    throw new ConflictError('RS_CONFLICT_INVALID_VERSION', `hlc: expected 15 digits, '.', 6 digits, got ${shown}`);
  }
  return { wallMs: Number(s.slice(0, HLC_WALL_DIGITS)), logical: Number(s.slice(HLC_WALL_DIGITS + 1)) };
}

/** -1, 0 or 1 in time order (valid HLC strings only). */
export function compareHlc(a: HlcString, b: HlcString): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}
