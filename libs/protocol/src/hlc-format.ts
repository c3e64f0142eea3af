// Wire format of hybrid logical clock timestamps. The clock itself lives in
// libs/conflict; this file only fixes how a timestamp is written down. Fixed-width
// zero padding makes plain string comparison equal to time order, so HLCs can be
// compared in SQL, in Redis and in JS without parsing.
import { z } from 'zod';
import { RegionsyncError } from './errors.js';
import { regionSchema } from './names.js';

export const HLC_WALL_DIGITS = 15;
export const HLC_LOGICAL_DIGITS = 6;
export const HLC_MAX_WALL_MS = 10 ** HLC_WALL_DIGITS - 1;
export const HLC_MAX_LOGICAL = 10 ** HLC_LOGICAL_DIGITS - 1;
export const HLC_PATTERN = /^\d{15}\.\d{6}$/;
/** Smallest possible HLC: sorts before every real timestamp. */
export const HLC_ZERO = `${'0'.repeat(HLC_WALL_DIGITS)}.${'0'.repeat(HLC_LOGICAL_DIGITS)}`;

export interface HlcParts {
  wallMs: number;
  logical: number;
}

export const hlcSchema = z
  .string()
  .regex(HLC_PATTERN, { message: 'HLC like 001700000000000.000000 (15-digit wall ms, dot, 6-digit counter)' });
export type Hlc = z.infer<typeof hlcSchema>;

export function isHlc(value: unknown): value is Hlc {
  return typeof value === 'string' && HLC_PATTERN.test(value);
}

export function formatHlc({ wallMs, logical }: HlcParts): Hlc {
  if (!Number.isSafeInteger(wallMs) || wallMs < 0 || wallMs > HLC_MAX_WALL_MS) {
    throw new RegionsyncError('RS_CONFLICT_INVALID_VERSION', `hlc.wallMs: expected an integer between 0 and ${HLC_MAX_WALL_MS}`);
  }
  if (!Number.isSafeInteger(logical) || logical < 0 || logical > HLC_MAX_LOGICAL) {
    throw new RegionsyncError('RS_CONFLICT_INVALID_VERSION', `hlc.logical: expected an integer between 0 and ${HLC_MAX_LOGICAL}`);
  }
  return `${String(wallMs).padStart(HLC_WALL_DIGITS, '0')}.${String(logical).padStart(HLC_LOGICAL_DIGITS, '0')}`;
}

export function parseHlc(s: string): HlcParts {
  if (typeof s !== 'string' || !HLC_PATTERN.test(s)) {
    // Not echoed: the string may come from a message body.
    const shown = typeof s === 'string' ? `a string of length ${(s as string).length}` : `a ${typeof s}`;
    throw new RegionsyncError('RS_CONFLICT_INVALID_VERSION', `hlc: expected 15 digits, '.', 6 digits, got ${shown}`);
  }
  return { wallMs: Number(s.slice(0, HLC_WALL_DIGITS)), logical: Number(s.slice(HLC_WALL_DIGITS + 1)) };
}

/** -1, 0 or 1 in time order; valid HLC strings only (lexicographic by design). */
export function compareHlc(a: string, b: string): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A row version: when (HLC) and where (origin region) the row was last written. */
export const versionSchema = z.object({ hlc: hlcSchema, region: regionSchema }).strict();
export type Version = z.infer<typeof versionSchema>;

/** Vector clock: the highest HLC seen from each region. */
export const vectorClockSchema = z.record(regionSchema, hlcSchema);
export type VectorClock = z.infer<typeof vectorClockSchema>;
