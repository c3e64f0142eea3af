// Row-level helpers of apply: keys of row changes, the new-key fast path's test, and
// adapting parked rows to a table's current columns.
import type { ChangeBody, RowChange } from '@regionsync/protocol';
import type { TableSql } from './row-sql.js';
import { qualify } from './sql-names.js';

// Computed for every row twice per transaction (new-key check, rounds): kept per row, and
// a one-column key (the usual case) skips the sort.
const rowKeys = new WeakMap<RowChange, string>();
export function rowKey(r: RowChange): string {
  let k = rowKeys.get(r);
  if (k !== undefined) return k;
  const cols = Object.keys(r.key);
  const parts = cols.length === 1 ? `${cols[0]!}\u0002${r.key[cols[0]!] ?? ''}` : cols.sort().map((c) => `${c}\u0002${r.key[c] ?? ''}`).join('\u0003');
  k = `${qualify(r.table)}\u0001${parts}`;
  rowKeys.set(r, k);
  return k;
}

/** Only inserts, no key twice: such a transaction can be applied without loading first. */
export function insertsOfDistinctKeys(bodies: ChangeBody[]): boolean {
  const seen = new Set<string>();
  for (const b of bodies) {
    for (const r of b.rows) {
      if (r.op !== 'insert') return false;
      const k = rowKey(r);
      if (seen.has(k)) return false;
      seen.add(k);
    }
  }
  return true;
}

/** Keeps only the columns this region's table has (a dropped column's values are discarded). */
export function adaptToColumns(row: RowChange, sql: TableSql): RowChange {
  if (!row.values) return row;
  const known = new Set(sql.info.columns.map((c) => c.name));
  const values: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(row.values)) if (known.has(k)) values[k] = v;
  return { ...row, values, ...(row.unchangedToast ? { unchangedToast: row.unchangedToast.filter((c) => known.has(c)) } : {}) };
}
