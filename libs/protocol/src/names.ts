// Region names, subject/topic names, message ids and LSNs. Every subject string is
// also used verbatim as a Kafka topic, so only [a-z0-9.-] may ever appear in one.
import { z } from 'zod';
import { RegionsyncError } from './errors.js';

// Region names become subject segments: a dot would split a segment in NATS and
// silently change the topic in Kafka.
export const REGION_PATTERN = /^[a-z][a-z0-9-]{1,62}$/;
export const regionSchema = z
  .string()
  .regex(REGION_PATTERN, { message: 'region name matching ^[a-z][a-z0-9-]{1,62}$' });
export type Region = z.infer<typeof regionSchema>;

export const DEFAULT_PREFIX = 'regionsync';
// Dot-separated segments, each like a region name, bounded so the longest derived
// name stays well under Kafka's 249-character topic limit.
export const PREFIX_PATTERN = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/;
export const PREFIX_MAX_LENGTH = 100;
export const prefixSchema = z
  .string()
  .max(PREFIX_MAX_LENGTH)
  .regex(PREFIX_PATTERN, { message: 'prefix of dot-separated [a-z][a-z0-9-]* segments' });

const SUBJECT_PATTERN = /^[a-z0-9-]+(\.[a-z0-9-]+)*$/;

function describe(value: unknown): string {
  if (typeof value !== 'string') return `a ${typeof value}`;
  return value.length > 80 ? `"${value.slice(0, 80)}…"` : JSON.stringify(value);
}

export function isRegion(value: unknown): value is Region {
  return typeof value === 'string' && REGION_PATTERN.test(value);
}

export function assertRegion(value: unknown, what = 'region'): asserts value is Region {
  if (!isRegion(value)) {
    throw new RegionsyncError('RS_CONFIG_INVALID', `${what}: expected region name matching ^[a-z][a-z0-9-]{1,62}$, got ${describe(value)}`);
  }
}

export function validatePrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || prefix.length > PREFIX_MAX_LENGTH || !PREFIX_PATTERN.test(prefix)) {
    throw new RegionsyncError(
      'RS_CONFIG_INVALID',
      `prefix: expected dot-separated [a-z][a-z0-9-]* segments, at most ${PREFIX_MAX_LENGTH} characters, got ${describe(prefix)}`,
    );
  }
  return prefix;
}

function regional(prefix: string | undefined, segment: string, region: string): string {
  const p = validatePrefix(prefix ?? DEFAULT_PREFIX);
  assertRegion(region);
  return `${p}.${segment}.${region}`;
}

/** Changes destined for one region: only that region's agent reads it. */
export function changesSubject(prefix: string | undefined, destination: string): string {
  return regional(prefix, 'changes', destination);
}

export function heartbeatsSubject(prefix: string | undefined, region: string): string {
  return regional(prefix, 'heartbeats', region);
}

/** Cache invalidations published by a region for its cache-only edge regions. */
export function cacheSubject(prefix: string | undefined, region: string): string {
  return regional(prefix, 'cache', region);
}

/** Content pin/copy requests and status for one region. */
export function contentSubject(prefix: string | undefined, region: string): string {
  return regional(prefix, 'content', region);
}

export function auditSubject(prefix: string | undefined, region: string): string {
  return regional(prefix, 'audit', region);
}

export function controlSubject(prefix?: string): string {
  return `${validatePrefix(prefix ?? DEFAULT_PREFIX)}.control`;
}

export function conflictsSubject(prefix?: string): string {
  return `${validatePrefix(prefix ?? DEFAULT_PREFIX)}.conflicts`;
}

/**
 * Dead-letter subject for a poison message: `<prefix>.dlq.<original minus prefix>`.
 * A dead-letter subject maps to itself so a poison message is never re-wrapped.
 */
export function deadLetterSubject(prefix: string | undefined, originalSubject: string): string {
  const p = validatePrefix(prefix ?? DEFAULT_PREFIX);
  if (typeof originalSubject !== 'string' || !SUBJECT_PATTERN.test(originalSubject)) {
    throw new RegionsyncError('RS_CONFIG_INVALID', `originalSubject: expected dot-separated [a-z0-9-]+ segments, got ${describe(originalSubject)}`);
  }
  const dlq = `${p}.dlq.`;
  if (originalSubject.startsWith(dlq)) return originalSubject;
  const rest = originalSubject.startsWith(`${p}.`) ? originalSubject.slice(p.length + 1) : originalSubject;
  return `${dlq}${rest}`;
}

// ---- LSNs ----------------------------------------------------------------

// PostgreSQL prints an LSN as two unpadded upper-case hex halves of a 64-bit position.
export const LSN_PATTERN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;
export const lsnSchema = z.string().regex(LSN_PATTERN, { message: 'LSN like 16/B374D848' });
const MAX_LSN = (1n << 64n) - 1n;

export function isLsn(value: unknown): value is string {
  return typeof value === 'string' && LSN_PATTERN.test(value);
}

export function parseLsn(lsn: string): bigint {
  if (!isLsn(lsn)) {
    // Not echoed: the string may come from a message body.
    const shown = typeof lsn === 'string' ? `a string of length ${(lsn as string).length}` : `a ${typeof lsn}`;
    throw new RegionsyncError('RS_PROTOCOL_SCHEMA', `lsn: expected LSN like 16/B374D848, got ${shown}`);
  }
  const [hi, lo] = lsn.split('/') as [string, string];
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

export function formatLsn(lsn: bigint): string {
  if (typeof lsn !== 'bigint' || lsn < 0n || lsn > MAX_LSN) {
    throw new RegionsyncError('RS_PROTOCOL_SCHEMA', 'lsn: expected a bigint between 0 and 2^64-1');
  }
  const hi = lsn >> 32n;
  const lo = lsn & 0xffffffffn;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

function toLsn(v: string | bigint): bigint {
  return typeof v === 'bigint' ? v : parseLsn(v);
}

/** -1, 0 or 1; accepts text or numeric LSNs (text compares by value, not lexically). */
export function compareLsn(a: string | bigint, b: string | bigint): -1 | 0 | 1 {
  // Both halves fit a double exactly: no BigInt per comparison (capture compares LSNs
  // several times per transaction).
  if (typeof a === 'string' && typeof b === 'string' && LSN_PATTERN.test(a) && LSN_PATTERN.test(b)) {
    const i = a.indexOf('/');
    const j = b.indexOf('/');
    const hiA = parseInt(a.slice(0, i), 16);
    const hiB = parseInt(b.slice(0, j), 16);
    if (hiA !== hiB) return hiA < hiB ? -1 : 1;
    const loA = parseInt(a.slice(i + 1), 16);
    const loB = parseInt(b.slice(j + 1), 16);
    return loA < loB ? -1 : loA > loB ? 1 : 0;
  }
  const x = toLsn(a);
  const y = toLsn(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Deterministic bus idempotency id for one chunk of one source transaction, e.g.
 * `us-east-1:0/16B3748:0`. The LSN is normalised so `0/016B3748` gives the same id.
 * The id does not name the destination: dedup must be scoped per subject/topic.
 */
export function messageId(sourceRegion: string, commitLsn: string | bigint, chunkIndex = 0): string {
  assertRegion(sourceRegion, 'sourceRegion');
  if (!Number.isSafeInteger(chunkIndex) || chunkIndex < 0) {
    throw new RegionsyncError('RS_PROTOCOL_SCHEMA', 'chunkIndex: expected a non-negative integer');
  }
  return `${sourceRegion}:${formatLsn(toLsn(commitLsn))}:${chunkIndex}`;
}
