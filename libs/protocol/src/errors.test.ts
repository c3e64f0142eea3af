import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ERROR_CATALOGUE,
  ERROR_CODES,
  errorCode,
  isErrorCode,
  isRegionsyncError,
  isRetryable,
  RegionsyncError,
  type ErrorArea,
} from './errors.js';

const AREAS: readonly ErrorArea[] = ['protocol', 'config', 'bus', 'replication', 'gdpr', 'cache', 'content', 'conflict'];

describe('error catalogue', () => {
  it('has well-formed entries', () => {
    for (const code of ERROR_CODES) {
      const entry = ERROR_CATALOGUE[code];
      expect(code).toMatch(/^RS_[A-Z]+(_[A-Z0-9]+)+$/);
      expect(code.startsWith(`RS_${entry.area.toUpperCase()}_`), code).toBe(true);
      expect(AREAS).toContain(entry.area);
      expect(entry.description.length).toBeGreaterThan(20);
      expect(entry.description.endsWith('.')).toBe(true);
    }
  });

  it('contains the codes other packages rely on, with the agreed retryability', () => {
    const retryable = ['RS_BUS_CONNECT', 'RS_BUS_PUBLISH', 'RS_BUS_PUBLISH_TIMEOUT', 'RS_BUS_CONSUMER', 'RS_REPLICATION_STREAM', 'RS_REPLICATION_APPLY', 'RS_CACHE_UNAVAILABLE', 'RS_CONTENT_PIN', 'RS_CONTENT_COPY'];
    const fatal = [
      'RS_PROTOCOL_DECODE', 'RS_PROTOCOL_SCHEMA', 'RS_PROTOCOL_TOO_LARGE', 'RS_PROTOCOL_VERSION',
      'RS_CONFIG_INVALID', 'RS_CONFIG_FILE', 'RS_CONFIG_PREREQUISITE', 'RS_BUS_CLOSED', 'RS_BUS_PROVISION',
      'RS_REPLICATION_SLOT', 'RS_REPLICATION_SCHEMA_MISMATCH', 'RS_REPLICATION_CLOCK_SKEW', 'RS_REPLICATION_PREREQUISITE',
      'RS_CONFLICT_INVALID_VERSION', 'RS_GDPR_POLICY_INVALID', 'RS_GDPR_RESIDENCY_VIOLATION', 'RS_GDPR_AUDIT_CHAIN_BROKEN', 'RS_CONTENT_WITHHELD',
    ];
    for (const code of retryable) expect(isErrorCode(code) && ERROR_CATALOGUE[code].retryable, code).toBe(true);
    for (const code of fatal) expect(isErrorCode(code) && !ERROR_CATALOGUE[code].retryable, code).toBe(true);
  });

  it('every code is documented in ERRORS.md with matching area and retryability', () => {
    const doc = readFileSync(new URL('../ERRORS.md', import.meta.url), 'utf8');
    for (const code of ERROR_CODES) {
      const section = doc.split(/^### /m).find((s) => s.startsWith(`${code}\n`));
      expect(section, `ERRORS.md has no "### ${code}" section`).toBeDefined();
      const { area, retryable } = ERROR_CATALOGUE[code];
      expect(section).toContain(`- Area: ${area}`);
      expect(section).toContain(`- Retryable: ${retryable ? 'yes' : 'no'}`);
      expect(section).toMatch(/- Meaning: \S/);
      expect(section).toMatch(/- Operator action: \S/);
    }
    const documented = [...doc.matchAll(/^### (RS_[A-Z0-9_]+)$/gm)].map((m) => m[1]);
    expect(documented.filter((c) => !isErrorCode(c)), 'ERRORS.md documents codes not in the catalogue').toEqual([]);
  });
});

describe('RegionsyncError', () => {
  it('takes area and retryability from the catalogue', () => {
    const e = new RegionsyncError('RS_BUS_PUBLISH', 'nats said no');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('RegionsyncError');
    expect(e.code).toBe('RS_BUS_PUBLISH');
    expect(e.area).toBe('bus');
    expect(e.retryable).toBe(true);
    expect(e.message).toBe('nats said no');
    expect(e.details).toBeUndefined();
    expect(e.cause).toBeUndefined();
  });

  it('lets the caller override retryability and attach cause and details', () => {
    const cause = new Error('ECONNRESET');
    const e = new RegionsyncError('RS_BUS_PUBLISH', 'rejected: stream full', { retryable: false, cause, details: { subject: 'rs.changes.x' } });
    expect(e.retryable).toBe(false);
    expect(e.cause).toBe(cause);
    expect(e.details).toEqual({ subject: 'rs.changes.x' });
    expect(JSON.parse(JSON.stringify(e))).toEqual({
      name: 'RegionsyncError',
      code: 'RS_BUS_PUBLISH',
      area: 'bus',
      retryable: false,
      message: 'rejected: stream full',
      details: { subject: 'rs.changes.x' },
    });
  });

  it('helpers classify unknown values', () => {
    const e = new RegionsyncError('RS_CACHE_UNAVAILABLE', 'redis down');
    expect(isRegionsyncError(e)).toBe(true);
    expect(isRetryable(e)).toBe(true);
    expect(errorCode(e)).toBe('RS_CACHE_UNAVAILABLE');
    for (const other of [new Error('x'), 'RS_CACHE_UNAVAILABLE', null, undefined, { code: 'RS_CACHE_UNAVAILABLE', retryable: true }]) {
      expect(isRegionsyncError(other)).toBe(false);
      expect(isRetryable(other)).toBe(false);
      expect(errorCode(other)).toBeUndefined();
    }
    expect(isRetryable(new RegionsyncError('RS_CONFIG_INVALID', 'bad'))).toBe(false);
  });

  it('recognises errors from another copy of this package by brand', () => {
    const foreign = Object.assign(new Error('x'), { code: 'RS_BUS_CONNECT', retryable: true });
    Object.defineProperty(foreign, Symbol.for('regionsync.error'), { value: true });
    expect(isRegionsyncError(foreign)).toBe(true);
    expect(isRetryable(foreign)).toBe(true);
  });
});
