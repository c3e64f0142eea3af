// Convergence properties: whatever order, duplication or batching deliveries take,
// every region must end with the same row. Also checks the merge against a direct
// model of the rules (newest write wins, newest delete buries older writes).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatHlc } from './hlc-format.js';
import { counterValue, mergeRow, mergeStates, stateFromChange } from './merge.js';
import { compareVersions } from './version.js';
import type { RowChange, RowState, TableStrategy, Version } from './types.js';

const REGIONS = ['ap-southeast-1', 'eu-west-1', 'us-east-1'];
const SCHEMA = ['id', 'a', 'b', 'body'];
const RUNS = 300;

// A small time range makes ties and near-ties between regions common.
const versionArb: fc.Arbitrary<Version> = fc.record({
  hlc: fc.tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 2 })).map(([wallMs, logical]) => formatHlc({ wallMs, logical })),
  region: fc.constantFrom(...REGIONS),
});
const cellArb = fc.constantFrom<string | null>(null, 'x', 'y', 'z', '');

function changeArb(strategy: TableStrategy): fc.Arbitrary<RowChange> {
  const fullImage = strategy.kind === 'row-lww';
  return fc
    .record({
      op: fc.constantFrom<RowChange['op']>('insert', 'update', 'update', 'delete'),
      version: versionArb,
      cells: fc.tuple(...SCHEMA.map(() => cellArb)),
      present: fc.tuple(...SCHEMA.map(() => fc.boolean())),
      toastBody: fc.boolean(),
      counter: fc.option(fc.bigInt({ min: -5n, max: 50n }), { nil: undefined }),
      // A counter value with no contribution (a row written before regionsync or unstamped),
      // or with one, the base its region counted from.
      plainCounter: fc.option(fc.bigInt({ min: 0n, max: 50n }), { nil: undefined, freq: 4 }),
    })
    .map(({ op, version, cells, present, toastBody, counter, plainCounter }) => {
      const change: RowChange = { op, version };
      if (op !== 'delete') {
        const values: Record<string, string | null> = {};
        // row-lww gets full row images as pgoutput sends them; column-lww gets only some columns.
        SCHEMA.forEach((column, i) => {
          if (fullImage || present[i]) values[column] = cells[i] ?? null;
        });
        if (op === 'update' && toastBody) {
          delete values['body'];
          change.unchangedToast = ['body'];
        }
        change.values = values;
      }
      if (counter !== undefined && strategy.counterColumns) change.counters = { hits: { region: version.region, total: counter.toString(), ...(plainCounter !== undefined ? { base: plainCounter.toString() } : {}) } };
      else if (plainCounter !== undefined && strategy.counterColumns && change.values) change.values['hits'] = plainCounter.toString();
      return change;
    });
}

const STRATEGIES: Array<[string, TableStrategy]> = [
  ['row-lww', { kind: 'row-lww' }],
  ['column-lww', { kind: 'column-lww' }],
  ['row-lww + counters', { kind: 'row-lww', counterColumns: ['hits'] }],
  ['column-lww + counters', { kind: 'column-lww', counterColumns: ['hits'] }],
];

function fold(changes: RowChange[], strategy: TableStrategy, start?: RowState): RowState | undefined {
  let s = start;
  for (const c of changes) s = mergeRow(s, c, strategy).state;
  return s;
}

/** A delivery schedule: a permutation of the changes with random duplicates spliced in. */
const scheduleArb = (n: number) =>
  fc.tuple(
    fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
    fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: n }),
  ).map(([order, dups]) => {
    const out = [...order];
    for (const [pos, idx] of dups) out.splice(pos % (out.length + 1), 0, idx % n);
    return out;
  });

const casesArb = (strategy: TableStrategy) =>
  fc.array(changeArb(strategy), { minLength: 1, maxLength: 10 }).chain((changes) =>
    fc.record({
      changes: fc.constant(changes),
      schedule: scheduleArb(changes.length),
      groups: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: changes.length, maxLength: changes.length }),
      joinOrder: fc.shuffledSubarray([0, 1, 2, 3], { minLength: 4, maxLength: 4 }),
    }),
  );

const newest = (vs: Version[]): Version | undefined => vs.reduce<Version | undefined>((m, v) => (m && compareVersions(m, v) >= 0 ? m : v), undefined);

describe.each(STRATEGIES)('merge convergence: %s', (_name, strategy) => {
  it('permutations and duplicates of deliveries give the same state', () => {
    fc.assert(
      fc.property(casesArb(strategy), ({ changes, schedule }) => {
        expect(fold(schedule.map((i) => changes[i] as RowChange), strategy)).toEqual(fold(changes, strategy));
      }),
      { numRuns: RUNS },
    );
  });

  it('regrouping deliveries into partial states and joining them gives the same state', () => {
    fc.assert(
      fc.property(casesArb(strategy), ({ changes, groups, joinOrder }) => {
        const parts = joinOrder
          .map((g) => fold(changes.filter((_, i) => groups[i] === g), strategy))
          .filter((s): s is RowState => s !== undefined);
        const joined = parts.reduce((acc, s) => mergeStates(acc, s, strategy));
        expect(joined).toEqual(fold(changes, strategy));
      }),
      { numRuns: RUNS },
    );
  });

  it('mergeStates is commutative, associative and idempotent', () => {
    const stateArb = fc.array(changeArb(strategy), { minLength: 1, maxLength: 4 }).map((cs) => fold(cs, strategy) as RowState);
    fc.assert(
      fc.property(stateArb, stateArb, stateArb, (a, b, c) => {
        expect(mergeStates(a, b, strategy)).toEqual(mergeStates(b, a, strategy));
        expect(mergeStates(mergeStates(a, b, strategy), c, strategy)).toEqual(mergeStates(a, mergeStates(b, c, strategy), strategy));
        const canonicalA = mergeStates(a, a, strategy);
        expect(mergeStates(canonicalA, a, strategy)).toEqual(canonicalA);
      }),
      { numRuns: RUNS },
    );
  });

  it('a deleted row comes back only through a strictly newer write', () => {
    fc.assert(
      fc.property(casesArb(strategy), ({ changes, schedule }) => {
        const final = fold(schedule.map((i) => changes[i] as RowChange), strategy) as RowState;
        const lastDelete = newest(changes.filter((c) => c.op === 'delete').map((c) => c.version));
        if (lastDelete === undefined) return;
        const revived = changes.some((c) => c.op !== 'delete' && compareVersions(c.version, lastDelete) > 0);
        expect(final.values !== null).toBe(revived);
        for (const column of Object.keys(final.values ?? {})) {
          if (strategy.counterColumns?.includes(column)) continue;
          const written = final.columnVersions?.[column] ?? final.version;
          expect(compareVersions(written, lastDelete)).toBe(1);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('matches the model: each column holds the newest write that carried it, after the newest delete', () => {
    fc.assert(
      fc.property(casesArb(strategy), ({ changes, schedule }) => {
        const final = fold(schedule.map((i) => changes[i] as RowChange), strategy) as RowState;
        const lastDelete = newest(changes.filter((c) => c.op === 'delete').map((c) => c.version));
        const writes = changes.filter((c) => c.op !== 'delete' && (!lastDelete || compareVersions(c.version, lastDelete) > 0));
        if (final.values === null) {
          expect(writes).toHaveLength(0);
          return;
        }
        for (const column of SCHEMA) {
          const carriers = writes.filter((w) => w.values && column in w.values && !w.unchangedToast?.includes(column));
          const top = newest(carriers.map((w) => w.version));
          if (top === undefined) {
            expect(final.values).not.toHaveProperty(column);
            continue;
          }
          // Equal versions with different values only arise from generated collisions; any of them is acceptable here.
          const candidates = carriers.filter((w) => compareVersions(w.version, top) === 0).map((w) => w.values?.[column]);
          expect(candidates).toContain(final.values[column]);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('counter columns', () => {
  const strategy: TableStrategy = { kind: 'column-lww', counterColumns: ['hits'] };
  it('the visible value is the sum of each region\'s newest contribution, in any delivery order', () => {
    fc.assert(
      fc.property(casesArb(strategy), ({ changes, schedule }) => {
        const final = fold(schedule.map((i) => changes[i] as RowChange), strategy) as RowState;
        let expected = 0n;
        for (const region of REGIONS) {
          const mine = changes.filter((c) => c.counters?.['hits']?.region === region);
          const top = newest(mine.map((c) => c.version));
          if (top === undefined) continue;
          const totals = mine.filter((c) => compareVersions(c.version, top) === 0).map((c) => BigInt(c.counters?.['hits']?.total ?? '0'));
          expected += totals.reduce((m, t) => (t > m ? t : m));
        }
        // Values that came without contributions count once, as the base (the largest).
        const plain = changes.flatMap((c) => (c.counters ? (c.counters['hits']?.base !== undefined ? [BigInt(c.counters['hits'].base)] : []) : c.op !== 'delete' && typeof c.values?.['hits'] === 'string' ? [BigInt(c.values['hits'])] : []));
        if (plain.length > 0) expected += plain.reduce((m, t) => (t > m ? t : m));
        expect(counterValue(final, 'hits')).toBe(expected);
        if (final.values !== null) expect(final.values['hits']).toBe(expected.toString());
      }),
      { numRuns: RUNS },
    );
  });
});

describe('a write to a row not held here', () => {
  // mergeRow takes a short path for most of them (no lattice); it must give exactly the lattice's state.
  it.each(STRATEGIES)('gives the same state as the full merge: %s', (_name, strategy) => {
    fc.assert(
      fc.property(changeArb(strategy), (change) => {
        const merged = mergeRow(undefined, change, strategy);
        expect(merged.state).toEqual(stateFromChange(change, strategy));
        expect(JSON.stringify(merged.state)).toBe(JSON.stringify(stateFromChange(change, strategy)));
        expect(merged.changed).toBe(true);
        expect(merged.outcome).toBe('applied');
        const counters = new Set(strategy.counterColumns ?? []);
        const values = merged.state.values ?? {};
        const missing = change.op === 'delete' ? [] : (change.unchangedToast ?? []).filter((c) => !counters.has(c) && !(c in values));
        expect(merged.unresolvedToast).toEqual(missing.length > 0 ? [...new Set(missing)].sort() : undefined);
      }),
      { numRuns: RUNS },
    );
  });
});
