// A hand-written check of one row change, equivalent to `rowChangeSchema` but without
// zod's per-field allocation: a change message carries up to thousands of rows and zod
// was the largest single cost of applying a catch-up backlog (CPU profile of the
// catch-up bench). It only ever answers "certainly valid"; anything else goes to the zod
// schema, which stays the single source of truth for error messages. A property test
// (row-change-check.test.ts) holds it to zod: it never accepts what zod rejects.
import { HLC_PATTERN } from './hlc-format.js';
import { REGION_PATTERN } from './names.js';

const TABLE_PATTERN = /^[^.\s]+\.[^.\s]+$/;
const DECIMAL_PATTERN = /^-?\d+(\.\d+)?$/;
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

function isCounter(v: unknown): boolean {
  if (!isPlainObject(v)) return false;
  let n = 0;
  for (const k in v) {
    if (k !== 'region' && k !== 'total') return false;
    n++;
  }
  return n === 2 && isRegion(v.region) && typeof v.total === 'string' && DECIMAL_PATTERN.test(v.total);
}

function isCounters(v: unknown): boolean {
  if (!isPlainObject(v)) return false;
  for (const k in v) if (!isColumnName(k) || !isCounter(v[k])) return false;
  return true;
}

function isVersion(v: unknown): boolean {
  if (!isPlainObject(v)) return false;
  let n = 0;
  for (const k in v) {
    if (k !== 'hlc' && k !== 'region') return false;
    n++;
  }
  return n === 2 && typeof v.hlc === 'string' && HLC_PATTERN.test(v.hlc) && isRegion(v.region);
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
