import { describe, expect, it } from 'vitest';
import { detectConcurrent, resolveConflict } from './conflict-detection.js';
import { counterValue, mergeRow, mergeStates, stateFromChange } from './merge.js';
import { BASE_CONTRIBUTION } from './row-lattice.js';
import type { RowChange, RowState, TableStrategy } from './types.js';

const h = (n: number) => `${String(n).padStart(15, '0')}.000000`;
const v = (n: number, region = 'eu-west-1') => ({ hlc: h(n), region });
const rowLww: TableStrategy = { kind: 'row-lww' };
const colLww: TableStrategy = { kind: 'column-lww' };

function apply(changes: RowChange[], strategy: TableStrategy): RowState | undefined {
  let s: RowState | undefined;
  for (const c of changes) s = mergeRow(s, c, strategy).state;
  return s;
}

describe('mergeRow, row-lww', () => {
  it('applies a newer write and skips an older one', () => {
    const first = mergeRow(undefined, { op: 'insert', values: { id: '1', name: 'a' }, version: v(10) }, rowLww);
    expect(first).toMatchObject({ outcome: 'applied', changed: true, state: { values: { id: '1', name: 'a' }, version: v(10) } });
    const newer = mergeRow(first.state, { op: 'update', values: { id: '1', name: 'b' }, version: v(20, 'us-east-1') }, rowLww);
    expect(newer.outcome).toBe('applied');
    expect(newer.state.values).toEqual({ id: '1', name: 'b' });
    const older = mergeRow(newer.state, { op: 'update', values: { id: '1', name: 'c' }, version: v(15) }, rowLww);
    expect(older).toMatchObject({ outcome: 'skipped', changed: false });
    expect(older.state).toEqual(newer.state);
  });

  it('skips a duplicate', () => {
    const c: RowChange = { op: 'insert', values: { id: '1' }, version: v(10) };
    const s = mergeRow(undefined, c, rowLww).state;
    expect(mergeRow(s, c, rowLww)).toMatchObject({ outcome: 'skipped', changed: false });
  });

  it('breaks an HLC tie by region name', () => {
    const a: RowChange = { op: 'update', values: { x: 'from-eu' }, version: v(10, 'eu-west-1') };
    const b: RowChange = { op: 'update', values: { x: 'from-us' }, version: v(10, 'us-east-1') };
    expect(apply([a, b], rowLww)?.values).toEqual({ x: 'from-us' });
    expect(apply([b, a], rowLww)?.values).toEqual({ x: 'from-us' });
  });

  it('a delete leaves a tombstone that an older update cannot revive', () => {
    const s = apply([
      { op: 'insert', values: { id: '1', name: 'a' }, version: v(10) },
      { op: 'delete', version: v(30, 'us-east-1') },
    ], rowLww) as RowState;
    expect(s).toEqual({ values: null, version: v(30, 'us-east-1'), deletedAt: v(30, 'us-east-1') });
    const late = mergeRow(s, { op: 'update', values: { id: '1', name: 'zombie' }, version: v(20) }, rowLww);
    expect(late).toMatchObject({ outcome: 'skipped', changed: false, state: { values: null } });
  });

  it('a write newer than the tombstone brings the row back, without pre-delete columns', () => {
    const s = apply([
      { op: 'insert', values: { id: '1', name: 'a', extra: 'old' }, version: v(10) },
      { op: 'delete', version: v(30) },
    ], rowLww);
    const back = mergeRow(s, { op: 'insert', values: { id: '1', name: 'new' }, version: v(40) }, rowLww);
    expect(back.outcome).toBe('applied');
    expect(back.state.values).toEqual({ id: '1', name: 'new' });
    expect(back.state.deletedAt).toEqual(v(30));
    // Once revived, a write from before the delete still stays dead.
    expect(mergeRow(back.state, { op: 'update', values: { extra: 'pre-delete' }, version: v(20) }, rowLww).outcome).toBe('skipped');
  });

  it('the delete wins an exact version tie', () => {
    const w: RowChange = { op: 'update', values: { a: '1' }, version: v(10) };
    const d: RowChange = { op: 'delete', version: v(10) };
    expect(apply([w, d], rowLww)?.values).toBeNull();
    expect(apply([d, w], rowLww)?.values).toBeNull();
  });

  it('keeps unchanged TOAST columns and converges when their real write arrives late', () => {
    const base: RowChange = { op: 'insert', values: { id: '1', body: 'v1', n: 'a' }, version: v(10) };
    const mid: RowChange = { op: 'update', values: { id: '1', body: 'v2', n: 'b' }, version: v(20, 'us-east-1') };
    const top: RowChange = { op: 'update', values: { id: '1', n: 'c' }, unchangedToast: ['body'], version: v(30) };
    const inOrder = apply([base, mid, top], rowLww) as RowState;
    expect(inOrder.values).toEqual({ id: '1', body: 'v2', n: 'c' });
    expect(inOrder.columnVersions).toEqual({ body: v(20, 'us-east-1') });
    // A whole-row register would keep body=v1 here forever.
    const late = apply([base, top, mid], rowLww) as RowState;
    expect(late).toEqual(inOrder);
    const r = mergeRow(apply([base, top], rowLww), mid, rowLww);
    expect(r.outcome).toBe('merged');
  });

  it('never nulls a TOAST column it does not know, and reports it', () => {
    const r = mergeRow(undefined, { op: 'update', values: { id: '1', body: null }, unchangedToast: ['body'], version: v(10) }, rowLww);
    expect(r.state.values).toEqual({ id: '1' });
    expect(r.unresolvedToast).toEqual(['body']);
  });
});

describe('mergeRow, column-lww', () => {
  it('keeps concurrent writes to different columns', () => {
    const ins: RowChange = { op: 'insert', values: { id: '1', a: '0', b: '0' }, version: v(10) };
    const ca: RowChange = { op: 'update', values: { a: '1' }, version: v(20, 'eu-west-1') };
    const cb: RowChange = { op: 'update', values: { b: '2' }, version: v(19, 'us-east-1') };
    const s1 = apply([ins, ca, cb], colLww) as RowState;
    expect(s1.values).toEqual({ id: '1', a: '1', b: '2' });
    expect(apply([cb, ins, ca], colLww)).toEqual(s1);
    expect(mergeRow(apply([ins, ca], colLww), cb, colLww).outcome).toBe('merged');
  });

  it('a delete beats column writes older than it', () => {
    const s = apply([
      { op: 'insert', values: { id: '1', a: '0' }, version: v(10) },
      { op: 'delete', version: v(30) },
      { op: 'update', values: { a: 'late' }, version: v(25, 'us-east-1') },
      { op: 'update', values: { b: 'new' }, version: v(35, 'us-east-1') },
    ], colLww) as RowState;
    expect(s.values).toEqual({ b: 'new' });
  });
});

describe('counters', () => {
  const strategy: TableStrategy = { kind: 'row-lww', counterColumns: ['likes'] };
  it('sums each region\'s newest cumulative contribution', () => {
    const s = apply([
      { op: 'insert', values: { id: '1', likes: '999' }, counters: { likes: { region: 'eu-west-1', total: '3' } }, version: v(10) },
      { op: 'update', values: { id: '1' }, counters: { likes: { region: 'us-east-1', total: '5' } }, version: v(11, 'us-east-1') },
      { op: 'update', values: { id: '1' }, counters: { likes: { region: 'eu-west-1', total: '4' } }, version: v(12) },
      // Older contribution from eu arriving late: ignored, not added.
      { op: 'update', values: { id: '1' }, counters: { likes: { region: 'eu-west-1', total: '3' } }, version: v(10) },
    ], strategy) as RowState;
    expect(counterValue(s, 'likes')).toBe(9n);
    expect(s.values).toEqual({ id: '1', likes: '9' });
  });

  it('an older row write still merges its counter contribution', () => {
    const newer = stateFromChange({ op: 'update', values: { id: '1' }, version: v(20) }, strategy);
    const r = mergeRow(newer, { op: 'update', values: { id: '1' }, counters: { likes: { region: 'us-east-1', total: '-2' } }, version: v(5, 'us-east-1') }, strategy);
    expect(r.outcome).toBe('merged');
    expect(counterValue(r.state, 'likes')).toBe(-2n);
  });

  it('a value that came without contributions (a row from before regionsync, or unstamped) is the base the counted changes add to, in either order', () => {
    const plain: RowChange = { op: 'insert', values: { id: '1', likes: '7' }, version: v(1) };
    const counted: RowChange = { op: 'update', values: { id: '1', likes: '10' }, counters: { likes: { region: 'us-east-1', total: '3' } }, version: v(11, 'us-east-1') };
    const a = apply([plain, counted], strategy) as RowState;
    const b = apply([counted, plain], strategy) as RowState;
    expect(a.values).toEqual({ id: '1', likes: '10' });
    expect(b).toEqual(a);
    expect(Object.keys(a.counters?.['likes'] ?? {}).sort()).toEqual(['us-east-1', BASE_CONTRIBUTION].sort());
    // A contribution-carrying change never turns its plain value into a base...
    expect(counterValue(apply([counted], strategy) as RowState, 'likes')).toBe(3n);
    // ...it names its base itself: a region that never held the plain value adds it too.
    const withBase: RowChange = { ...counted, counters: { likes: { region: 'us-east-1', total: '3', base: '7' } } };
    expect(counterValue(apply([withBase], strategy) as RowState, 'likes')).toBe(10n);
    expect(apply([withBase, plain], strategy)).toEqual(a);
  });

  it('contributions survive a delete, so a revived row does not double count', () => {
    const s = apply([
      { op: 'insert', values: { id: '1' }, counters: { likes: { region: 'eu-west-1', total: '3' } }, version: v(10) },
      { op: 'delete', version: v(20) },
    ], strategy) as RowState;
    expect(s.values).toBeNull();
    expect(counterValue(s, 'likes')).toBe(3n);
    const back = mergeRow(s, { op: 'insert', values: { id: '1' }, counters: { likes: { region: 'eu-west-1', total: '4' } }, version: v(30) }, strategy);
    expect(back.state.values).toEqual({ id: '1', likes: '4' });
  });

  it('rejects contributions for undeclared columns and malformed totals', () => {
    expect(() => mergeRow(undefined, { op: 'update', counters: { x: { region: 'eu-west-1', total: '1' } }, version: v(1) }, strategy))
      .toThrowError(expect.objectContaining({ code: 'RS_CONFLICT_STRATEGY' }));
    expect(() => mergeRow(undefined, { op: 'update', counters: { likes: { region: 'eu-west-1', total: '1.5' } }, version: v(1) }, strategy))
      .toThrowError(/counters\.likes\.total/);
  });
});

describe('validation and purity', () => {
  it('rejects invalid versions and strategies', () => {
    expect(() => mergeRow(undefined, { op: 'insert', values: {}, version: { hlc: 'now', region: 'eu-west-1' } }, rowLww))
      .toThrowError(expect.objectContaining({ code: 'RS_CONFLICT_INVALID_VERSION' }));
    expect(() => mergeRow(undefined, { op: 'insert', values: {}, version: v(1) }, { kind: 'mvr' } as unknown as TableStrategy))
      .toThrowError(expect.objectContaining({ code: 'RS_CONFLICT_STRATEGY' }));
  });

  it('does not mutate or alias its inputs', () => {
    const local = stateFromChange({ op: 'insert', values: { id: '1', a: 'x' }, version: v(10) }, colLww);
    const snapshot = structuredClone(local);
    const change: RowChange = { op: 'update', values: { a: 'y' }, version: v(20) };
    const r = mergeRow(local, change, colLww);
    expect(local).toEqual(snapshot);
    r.state.version.hlc = h(99);
    expect(change.version.hlc).toBe(h(20));
  });

  it('mergeStates joins', () => {
    const a = stateFromChange({ op: 'update', values: { a: '1' }, version: v(10) }, colLww);
    const b = stateFromChange({ op: 'update', values: { b: '2' }, version: v(20) }, colLww);
    expect(mergeStates(a, b, colLww)).toEqual({ values: { a: '1', b: '2' }, version: v(20), columnVersions: { a: v(10) } });
  });
});

describe('conflict detection', () => {
  const local = stateFromChange({ op: 'update', values: { a: '1' }, version: v(20, 'us-east-1') }, rowLww);
  it('reports a write whose author had not seen the local version', () => {
    expect(detectConcurrent(local, v(21), { 'eu-west-1': h(21), 'us-east-1': h(19) })).toBe(true);
    expect(detectConcurrent(local, v(21), { 'eu-west-1': h(21), 'us-east-1': h(20) })).toBe(false);
  });
  it('never reports a same-region write or a missing row', () => {
    expect(detectConcurrent(local, v(25, 'us-east-1'), {})).toBe(false);
    expect(detectConcurrent(undefined, v(25), {})).toBe(false);
  });
  it('uses the local writer clock to drop late, causally older writes', () => {
    expect(detectConcurrent(local, v(15), { 'eu-west-1': h(15) }, { 'eu-west-1': h(15), 'us-east-1': h(20) })).toBe(false);
    expect(detectConcurrent(local, v(15), { 'eu-west-1': h(15) }, { 'us-east-1': h(20) })).toBe(true);
  });
  it('resolveConflict names the winner', () => {
    expect(resolveConflict(local, { version: v(21) })).toBe('remote');
    expect(resolveConflict(local, { version: v(19) })).toBe('local');
  });
});
