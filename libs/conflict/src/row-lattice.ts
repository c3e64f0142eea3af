// The join-semilattice behind every merge. A RowState is the compact, canonical
// encoding of a Lattice; merging = decode, join, encode. Because join is a
// max per component, it is commutative, associative and idempotent, which is what lets
// every region reach the same row whatever order, duplication or batching of
// deliveries it saw.
import { compareVersions, maxVersion } from './version.js';
import type { CounterContribution, RowState, RowValues, Version } from './types.js';

export interface Register {
  value: string | null;
  version: Version;
}

export interface Lattice {
  /** Newest event of any kind. */
  version: Version;
  /** Newest delete. The row is live iff `version` is strictly newer than it. */
  deletedAt?: Version;
  /** Newest value per non-counter column, only those strictly newer than `deletedAt`. */
  registers: Map<string, Register>;
  counters: Map<string, Map<string, CounterContribution>>;
}

/**
 * The contribution that stands for a counter value held without any: a row written before
 * regionsync was set up (copied to every region as a plain value), or by a writer it does not
 * stamp (under a foreign replication origin). Without it the first counted change dropped
 * that value: the writing region held base + delta, the others delta alone. At the zero
 * version, so every region holding the same value holds the same base; not a region name
 * (REGION_PATTERN has no '~'), so no region's own total can overwrite it.
 */
export const BASE_CONTRIBUTION = '~base';
const BASE_VERSION: Version = { hlc: '000000000000000.000000', region: BASE_CONTRIBUTION };
const INTEGER = /^-?\d+$/;

/** A counter column's value as its base contribution, if it is an integer. */
export function baseContribution(value: string | null | undefined): Map<string, CounterContribution> | undefined {
  if (typeof value !== 'string' || !INTEGER.test(value)) return undefined;
  return new Map([[BASE_CONTRIBUTION, { total: BigInt(value).toString(), version: { ...BASE_VERSION } }]]);
}

export function isLive(l: Lattice): boolean {
  return l.deletedAt === undefined || compareVersions(l.version, l.deletedAt) > 0;
}

// Equal versions only come from one transaction touching a row twice (or a producer
// bug); the tie-breaks below just have to be deterministic.
function pickRegister(a: Register | undefined, b: Register | undefined): Register | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  const byVersion = compareVersions(a.version, b.version);
  if (byVersion !== 0) return byVersion > 0 ? a : b;
  if (a.value === b.value || b.value === null) return a;
  if (a.value === null) return b;
  return a.value >= b.value ? a : b;
}

function pickContribution(a: CounterContribution | undefined, b: CounterContribution | undefined): CounterContribution | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  const byVersion = compareVersions(a.version, b.version);
  if (byVersion !== 0) return byVersion > 0 ? a : b;
  return BigInt(a.total) >= BigInt(b.total) ? a : b;
}

export function join(a: Lattice, b: Lattice): Lattice {
  const version = maxVersion(a.version, b.version);
  const deletedAt = a.deletedAt && b.deletedAt ? maxVersion(a.deletedAt, b.deletedAt) : (a.deletedAt ?? b.deletedAt);
  const out: Lattice = { version, registers: new Map(), counters: new Map() };
  if (deletedAt !== undefined) out.deletedAt = deletedAt;
  const live = isLive(out);
  for (const column of new Set([...a.registers.keys(), ...b.registers.keys()])) {
    const r = pickRegister(a.registers.get(column), b.registers.get(column));
    // A value written before the newest delete belongs to a row that no longer exists.
    if (r && live && (deletedAt === undefined || compareVersions(r.version, deletedAt) > 0)) out.registers.set(column, r);
  }
  for (const column of new Set([...a.counters.keys(), ...b.counters.keys()])) {
    const x = a.counters.get(column) ?? new Map<string, CounterContribution>();
    const y = b.counters.get(column) ?? new Map<string, CounterContribution>();
    const merged = new Map<string, CounterContribution>();
    for (const region of new Set([...x.keys(), ...y.keys()])) {
      const c = pickContribution(x.get(region), y.get(region));
      if (c) merged.set(region, c);
    }
    out.counters.set(column, merged);
  }
  return out;
}

const copyVersion = (v: Version): Version => ({ hlc: v.hlc, region: v.region });

export function decode(state: RowState, counterColumns: ReadonlySet<string>): Lattice {
  const out: Lattice = { version: copyVersion(state.version), registers: new Map(), counters: new Map() };
  if (state.deletedAt !== undefined) out.deletedAt = copyVersion(state.deletedAt);
  for (const [column, value] of Object.entries(state.values ?? {})) {
    if (counterColumns.has(column)) continue;
    out.registers.set(column, { value, version: copyVersion(state.columnVersions?.[column] ?? state.version) });
  }
  for (const [column, byRegion] of Object.entries(state.counters ?? {})) {
    const m = new Map<string, CounterContribution>();
    for (const [region, c] of Object.entries(byRegion)) m.set(region, { total: c.total, version: copyVersion(c.version) });
    out.counters.set(column, m);
  }
  return out;
}

export function sumContributions(byRegion: Record<string, CounterContribution> | Map<string, CounterContribution> | undefined): bigint {
  let sum = 0n;
  for (const c of byRegion instanceof Map ? byRegion.values() : Object.values(byRegion ?? {})) sum += BigInt(c.total);
  return sum;
}

/** Canonical encoding: sorted keys, empty parts omitted, so equal lattices encode to equal JSON. */
export function encode(l: Lattice, counterColumns: ReadonlySet<string>): RowState {
  const live = isLive(l);
  const state: RowState = { values: null, version: copyVersion(l.version) };
  if (live) {
    const values: RowValues = {};
    const columnVersions: Record<string, Version> = {};
    const columns = [...new Set([...l.registers.keys(), ...counterColumns])].sort();
    for (const column of columns) {
      if (counterColumns.has(column)) {
        values[column] = sumContributions(l.counters.get(column)).toString();
        continue;
      }
      const r = l.registers.get(column) as Register;
      values[column] = r.value;
      if (compareVersions(r.version, l.version) !== 0) columnVersions[column] = copyVersion(r.version);
    }
    state.values = values;
    if (Object.keys(columnVersions).length > 0) state.columnVersions = columnVersions;
  }
  const counters: NonNullable<RowState['counters']> = {};
  for (const column of [...l.counters.keys()].sort()) {
    const byRegion = l.counters.get(column) as Map<string, CounterContribution>;
    if (byRegion.size === 0) continue;
    counters[column] = {};
    for (const region of [...byRegion.keys()].sort()) {
      const c = byRegion.get(region) as CounterContribution;
      counters[column][region] = { total: c.total, version: copyVersion(c.version) };
    }
  }
  if (Object.keys(counters).length > 0) state.counters = counters;
  if (l.deletedAt !== undefined) state.deletedAt = copyVersion(l.deletedAt);
  return state;
}
