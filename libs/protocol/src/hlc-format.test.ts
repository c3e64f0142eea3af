import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errorCode } from './errors.js';
import {
  compareHlc,
  formatHlc,
  HLC_MAX_LOGICAL,
  HLC_MAX_WALL_MS,
  HLC_ZERO,
  hlcSchema,
  parseHlc,
  vectorClockSchema,
  versionSchema,
} from './hlc-format.js';

const parts = fc.record({ wallMs: fc.integer({ min: 0, max: HLC_MAX_WALL_MS }), logical: fc.integer({ min: 0, max: HLC_MAX_LOGICAL }) });

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return errorCode(e) ?? 'not-a-regionsync-error';
  }
  return undefined;
}

describe('HLC wire format', () => {
  it('formats with fixed width', () => {
    expect(formatHlc({ wallMs: 1_714_560_000_000, logical: 7 })).toBe('001714560000000.000007');
    expect(formatHlc({ wallMs: 0, logical: 0 })).toBe(HLC_ZERO);
    expect(formatHlc({ wallMs: HLC_MAX_WALL_MS, logical: HLC_MAX_LOGICAL })).toBe('999999999999999.999999');
  });

  it('parses back', () => {
    expect(parseHlc('001714560000000.000007')).toEqual({ wallMs: 1_714_560_000_000, logical: 7 });
  });

  it.each([
    { wallMs: -1, logical: 0 },
    { wallMs: 1.5, logical: 0 },
    { wallMs: HLC_MAX_WALL_MS + 1, logical: 0 },
    { wallMs: 0, logical: HLC_MAX_LOGICAL + 1 },
    { wallMs: Number.NaN, logical: 0 },
  ])('refuses to format %j', (p) => {
    expect(codeOf(() => formatHlc(p))).toBe('RS_CONFLICT_INVALID_VERSION');
  });

  it.each(['', '1714560000000.7', '001714560000000-000007', '001714560000000.0000070', ' 001714560000000.000007', '00171456000000a.000007'])(
    'refuses to parse %j',
    (s) => {
      expect(codeOf(() => parseHlc(s))).toBe('RS_CONFLICT_INVALID_VERSION');
      expect(hlcSchema.safeParse(s).success).toBe(false);
    },
  );

  it('round-trips (property)', () => {
    fc.assert(
      fc.property(parts, (p) => {
        expect(parseHlc(formatHlc(p))).toEqual(p);
      }),
    );
  });

  it('string order equals numeric (wall, logical) order (property)', () => {
    fc.assert(
      fc.property(parts, parts, (a, b) => {
        const numeric = a.wallMs !== b.wallMs ? Math.sign(a.wallMs - b.wallMs) : Math.sign(a.logical - b.logical);
        const sa = formatHlc(a);
        const sb = formatHlc(b);
        expect(compareHlc(sa, sb)).toBe(numeric);
        expect(sa < sb ? -1 : sa > sb ? 1 : 0).toBe(numeric);
      }),
    );
  });

  it('sorting strings sorts by time', () => {
    fc.assert(
      fc.property(fc.array(parts, { maxLength: 50 }), (list) => {
        const byString = list.map(formatHlc).sort();
        const byNumber = [...list].sort((a, b) => a.wallMs - b.wallMs || a.logical - b.logical).map(formatHlc);
        expect(byString).toEqual(byNumber);
      }),
    );
  });
});

describe('version and vector clock schemas', () => {
  it('accepts valid values', () => {
    expect(versionSchema.parse({ hlc: HLC_ZERO, region: 'eu-west-1' })).toEqual({ hlc: HLC_ZERO, region: 'eu-west-1' });
    expect(vectorClockSchema.parse({ 'eu-west-1': HLC_ZERO, 'us-east-1': HLC_ZERO })).toBeTruthy();
    expect(vectorClockSchema.parse({})).toEqual({});
  });

  it('rejects bad regions, bad HLCs and extra fields', () => {
    expect(versionSchema.safeParse({ hlc: HLC_ZERO, region: 'EU' }).success).toBe(false);
    expect(versionSchema.safeParse({ hlc: '1.2', region: 'eu-west-1' }).success).toBe(false);
    expect(versionSchema.safeParse({ hlc: HLC_ZERO, region: 'eu-west-1', x: 1 }).success).toBe(false);
    expect(vectorClockSchema.safeParse({ 'eu.west': HLC_ZERO }).success).toBe(false);
    expect(vectorClockSchema.safeParse({ 'eu-west-1': 5 }).success).toBe(false);
  });
});
