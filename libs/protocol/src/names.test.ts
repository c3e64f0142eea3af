import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errorCode } from './errors.js';
import {
  auditSubject,
  cacheSubject,
  changesSubject,
  compareLsn,
  conflictsSubject,
  contentSubject,
  controlSubject,
  deadLetterSubject,
  DEFAULT_PREFIX,
  formatLsn,
  heartbeatsSubject,
  isRegion,
  messageId,
  parseLsn,
  regionSchema,
} from './names.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return errorCode(e) ?? 'not-a-regionsync-error';
  }
  return undefined;
}

describe('region names', () => {
  it.each(['us-east-1', 'eu-west-1', 'ap-southeast-1', 'coordinator', 'ab'])('accepts %s', (r) => {
    expect(isRegion(r)).toBe(true);
    expect(regionSchema.safeParse(r).success).toBe(true);
  });

  it.each(['', 'a', 'US-east-1', '1east', 'eu.west', 'eu_west', 'eu west', `a${'b'.repeat(63)}`])('rejects %j', (r) => {
    expect(isRegion(r)).toBe(false);
  });
});

describe('subjects', () => {
  it('builds every subject from the prefix', () => {
    expect(changesSubject('regionsync', 'eu-west-1')).toBe('regionsync.changes.eu-west-1');
    expect(heartbeatsSubject('rs', 'us-east-1')).toBe('rs.heartbeats.us-east-1');
    expect(cacheSubject('rs', 'us-east-1')).toBe('rs.cache.us-east-1');
    expect(contentSubject('rs', 'us-east-1')).toBe('rs.content.us-east-1');
    expect(auditSubject('rs', 'us-east-1')).toBe('rs.audit.us-east-1');
    expect(controlSubject('rs')).toBe('rs.control');
    expect(conflictsSubject('acme.prod')).toBe('acme.prod.conflicts');
  });

  it('defaults the prefix', () => {
    expect(DEFAULT_PREFIX).toBe('regionsync');
    expect(changesSubject(undefined, 'eu-west-1')).toBe('regionsync.changes.eu-west-1');
    expect(controlSubject()).toBe('regionsync.control');
    expect(conflictsSubject()).toBe('regionsync.conflicts');
  });

  it('only ever produces characters valid in both NATS subjects and Kafka topics', () => {
    const region = fc.stringMatching(/^[a-z][a-z0-9-]{1,62}$/);
    fc.assert(
      fc.property(region, (r) => {
        for (const s of [changesSubject(undefined, r), heartbeatsSubject(undefined, r), cacheSubject(undefined, r), auditSubject(undefined, r)]) {
          expect(s).toMatch(/^[a-z0-9.-]+$/);
          expect(s.length).toBeLessThan(250);
        }
      }),
    );
  });

  it.each(['', 'Regionsync', 'rs.', '.rs', 'rs..x', 'rs_x', 'rs.*', 'rs.>', 'x'.repeat(101)])('rejects prefix %j', (p) => {
    expect(codeOf(() => changesSubject(p, 'eu-west-1'))).toBe('RS_CONFIG_INVALID');
  });

  it('rejects region names that would break the subject', () => {
    expect(codeOf(() => changesSubject('rs', 'eu.west'))).toBe('RS_CONFIG_INVALID');
    expect(codeOf(() => heartbeatsSubject('rs', '*'))).toBe('RS_CONFIG_INVALID');
  });

  it('derives dead-letter subjects', () => {
    expect(deadLetterSubject('rs', 'rs.changes.eu-west-1')).toBe('rs.dlq.changes.eu-west-1');
    expect(deadLetterSubject(undefined, 'regionsync.control')).toBe('regionsync.dlq.control');
    expect(deadLetterSubject('rs', 'other.topic')).toBe('rs.dlq.other.topic');
    expect(deadLetterSubject('rs', 'rs.dlq.changes.eu-west-1')).toBe('rs.dlq.changes.eu-west-1');
    expect(codeOf(() => deadLetterSubject('rs', 'rs.changes.>'))).toBe('RS_CONFIG_INVALID');
  });
});

describe('LSN helpers', () => {
  it('parses and formats like PostgreSQL', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(parseLsn('0/0')).toBe(0n);
    expect(parseLsn('0/16b3748')).toBe(0x16b3748n);
    expect(formatLsn(0x16b374d848n)).toBe('16/B374D848');
    expect(formatLsn(0n)).toBe('0/0');
    expect(formatLsn((1n << 64n) - 1n)).toBe('FFFFFFFF/FFFFFFFF');
  });

  it.each(['', '16', '16/', '/1', '1/2/3', 'G/0', '123456789/0', ' 0/0', '-1/0'])('rejects %j', (s) => {
    expect(codeOf(() => parseLsn(s))).toBe('RS_PROTOCOL_SCHEMA');
  });

  it('rejects out-of-range bigints', () => {
    expect(codeOf(() => formatLsn(-1n))).toBe('RS_PROTOCOL_SCHEMA');
    expect(codeOf(() => formatLsn(1n << 64n))).toBe('RS_PROTOCOL_SCHEMA');
  });

  it('compares by value, not lexically', () => {
    expect(compareLsn('0/FF', '1/0')).toBe(-1);
    expect(compareLsn('A/0', '9/FFFFFFFF')).toBe(1);
    expect(compareLsn('0/16B3748', '0/016b3748')).toBe(0);
    expect(compareLsn(5n, '0/5')).toBe(0);
    expect(() => compareLsn('0/5', 'x')).toThrowError(/LSN like/);
  });

  it('compares text LSNs exactly as their 64-bit values (property)', () => {
    const lsn = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    const text = (v: bigint, pad: boolean, lower: boolean) => {
      const t = `${(v >> 32n).toString(16)}/${(pad ? '0' : '') + (v & 0xffffffffn).toString(16)}`;
      return lower ? t : t.toUpperCase();
    };
    fc.assert(
      fc.property(lsn, lsn, fc.boolean(), fc.boolean(), (a, b, pad, lower) => {
        const b2 = (v: bigint) => (v & 0xffffffffn) >= 0x10000000n ? false : pad;
        expect(compareLsn(text(a, b2(a), lower), text(b, false, !lower))).toBe(a < b ? -1 : a > b ? 1 : 0);
      }),
    );
  });

  it('format/parse round-trips and preserves order (property)', () => {
    const lsn = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    fc.assert(
      fc.property(lsn, lsn, (a, b) => {
        expect(parseLsn(formatLsn(a))).toBe(a);
        const expected = a < b ? -1 : a > b ? 1 : 0;
        expect(compareLsn(formatLsn(a), formatLsn(b))).toBe(expected);
      }),
    );
  });
});

describe('messageId', () => {
  it('is deterministic and normalises the LSN', () => {
    expect(messageId('us-east-1', '0/16B3748')).toBe('us-east-1:0/16B3748:0');
    expect(messageId('us-east-1', '0/016b3748', 3)).toBe('us-east-1:0/16B3748:3');
    expect(messageId('us-east-1', 0x16b3748n, 3)).toBe('us-east-1:0/16B3748:3');
  });

  it('validates its inputs', () => {
    expect(codeOf(() => messageId('US', '0/1'))).toBe('RS_CONFIG_INVALID');
    expect(codeOf(() => messageId('us-east-1', 'nope'))).toBe('RS_PROTOCOL_SCHEMA');
    expect(codeOf(() => messageId('us-east-1', '0/1', -1))).toBe('RS_PROTOCOL_SCHEMA');
  });
});
