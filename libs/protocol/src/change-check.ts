// A hand-written check of a change envelope, equivalent to `changeEnvelopeSchema` but
// without zod's per-field allocation. Every replicated transaction is encoded and decoded
// once per destination, and zod was the largest single cost of both (CPU profiles of the
// catch-up and replication benches: 32 µs per row, about 120 µs per message on top).
// It only answers "certainly valid"; anything else goes to the zod schema, which stays the
// single source of truth for rejections and their messages. A property test
// (change-check.test.ts) holds it to zod in both directions.
import { datetimeRegex } from 'zod';
import type { EnvelopeOf } from './envelope.js';
import { MESSAGE_ID_PATTERN, PROTOCOL_VERSION } from './envelope.js';
import { HLC_PATTERN } from './hlc-format.js';
import { LSN_PATTERN, REGION_PATTERN } from './names.js';

const TABLE_PATTERN = /^[^.\s]+\.[^.\s]+$/;
const DECIMAL_PATTERN = /^-?\d+(\.\d+)?$/;
// The very regex `isoTimestampSchema` (z.string().datetime({ offset: true })) runs.
const ISO_TIMESTAMP = datetimeRegex({ precision: null, offset: true, local: false });
const ENVELOPE_KEYS = new Set(['v', 'kind', 'id', 'source', 'sentAt', 'body']);
const BODY_KEYS = new Set(['sourceRegion', 'destination', 'commitLsn', 'commitTime', 'xid', 'hlc', 'vclock', 'chunk', 'rows', 'schemas']);
const ROW_KEYS = new Set(['table', 'op', 'key', 'values', 'unchangedToast', 'counters', 'redacted', 'version']);

type Obj = Record<string, unknown>;

// zod reads only own enumerable keys of plain objects; anything unusual goes to zod.
function isPlainObject(v: unknown): v is Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function isColumnName(k: unknown): boolean {
  return typeof k === 'string' && k.length >= 1 && k.length <= 200 && k !== '__proto__';
}

function isRegion(v: unknown): boolean {
  return typeof v === 'string' && REGION_PATTERN.test(v);
}

function isCells(v: unknown): boolean {
  if (!isPlainObject(v)) return false;
  for (const k in v) {
    if (!isColumnName(k)) return false;
    const cell = v[k];
    if (cell !== null && typeof cell !== 'string') return false;
  }
  return true;
}

function isColumnList(v: unknown): boolean {
  if (!Array.isArray(v)) return false;
  for (const c of v) if (!isColumnName(c)) return false;
  return true;
}

/** A plain object whose keys are exactly `a` and `b` (a strict two-field zod object). */
function hasKeysExactly(v: unknown, a: string, b: string): v is Obj {
  if (!isPlainObject(v)) return false;
  let n = 0;
  for (const k in v) {
    if (k !== a && k !== b) return false;
    n++;
  }
  return n === 2;
}

const INTEGER_PATTERN = /^-?\d+$/;

function isCounter(v: unknown): boolean {
  if (isPlainObject(v) && v.base !== undefined) {
    const { base, ...rest } = v;
    return typeof base === 'string' && INTEGER_PATTERN.test(base) && isCounter(rest);
  }
  return hasKeysExactly(v, 'region', 'total') && isRegion(v.region) && typeof v.total === 'string' && DECIMAL_PATTERN.test(v.total);
}

function isCounters(v: unknown): boolean {
  if (!isPlainObject(v)) return false;
  for (const k in v) if (!isColumnName(k) || !isCounter(v[k])) return false;
  return true;
}

function isVersion(v: unknown): boolean {
  return hasKeysExactly(v, 'hlc', 'region') && typeof v.hlc === 'string' && HLC_PATTERN.test(v.hlc) && isRegion(v.region);
}

/** True only if `rowChangeSchema` accepts `v` (false may still be valid: ask zod). */
export function isValidRowChange(v: unknown): boolean {
  if (!isPlainObject(v)) return false;
  for (const k in v) if (!ROW_KEYS.has(k)) return false;
  const { table, op } = v;
  if (typeof table !== 'string' || table.length > 200 || !TABLE_PATTERN.test(table)) return false;
  if (op !== 'insert' && op !== 'update' && op !== 'delete') return false;
  if (!isCells(v.key)) return false;
  if (v.values !== undefined && !isCells(v.values)) return false;
  if (v.unchangedToast !== undefined && !isColumnList(v.unchangedToast)) return false;
  if (v.counters !== undefined && !isCounters(v.counters)) return false;
  if (v.redacted !== undefined && !isColumnList(v.redacted)) return false;
  return isVersion(v.version);
}

/** True only if every element passes `isValidRowChange`. */
export function areValidRowChanges(rows: unknown): rows is unknown[] {
  if (!Array.isArray(rows)) return false;
  for (let i = 0; i < rows.length; i++) if (!isValidRowChange(rows[i])) return false;
  return true;
}

function hasOnlyKeys(v: Obj, allowed: ReadonlySet<string>): boolean {
  for (const k in v) if (!allowed.has(k)) return false;
  return true;
}

const isNonNegativeInt = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0;

function isVectorClock(v: unknown): boolean {
  if (!isPlainObject(v)) return false;
  for (const k in v) {
    const h = v[k];
    if (!REGION_PATTERN.test(k) || typeof h !== 'string' || !HLC_PATTERN.test(h)) return false;
  }
  return true;
}

function isSchemas(v: unknown): boolean {
  if (!isPlainObject(v)) return false;
  for (const k in v) {
    const layout = v[k];
    if (k.length < 1 || k.length > 200 || k === '__proto__' || typeof layout !== 'string' || layout.length > 20_000) return false;
  }
  return true;
}

function isChunk(v: unknown): boolean {
  return hasKeysExactly(v, 'index', 'last') && isNonNegativeInt(v.index) && typeof v.last === 'boolean';
}

/** True only if `changeEnvelopeSchema` accepts `v` (false may still be valid: ask zod). */
export function isValidChangeEnvelope(v: unknown): v is EnvelopeOf<'change'> {
  if (!isPlainObject(v) || !hasOnlyKeys(v, ENVELOPE_KEYS)) return false;
  if (v.v !== PROTOCOL_VERSION || v.kind !== 'change' || !isNonNegativeInt(v.sentAt)) return false;
  if (typeof v.id !== 'string' || !MESSAGE_ID_PATTERN.test(v.id) || !isRegion(v.source)) return false;
  const b = v.body;
  if (!isPlainObject(b) || !hasOnlyKeys(b, BODY_KEYS)) return false;
  if (!isRegion(b.sourceRegion) || !isRegion(b.destination) || !isNonNegativeInt(b.xid)) return false;
  if (typeof b.commitLsn !== 'string' || !LSN_PATTERN.test(b.commitLsn)) return false;
  if (typeof b.commitTime !== 'string' || !ISO_TIMESTAMP.test(b.commitTime)) return false;
  if (typeof b.hlc !== 'string' || !HLC_PATTERN.test(b.hlc)) return false;
  if (!isVectorClock(b.vclock) || !isChunk(b.chunk)) return false;
  if (b.schemas !== undefined && !isSchemas(b.schemas)) return false;
  return areValidRowChanges(b.rows);
}
