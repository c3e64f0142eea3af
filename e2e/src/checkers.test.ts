import { describe, expect, it } from 'vitest';
import { checkCounters, checkNoLostWrite, checkNoResurrection, countShortfalls, parseMetrics, type AgentProgress, type RegionState } from './checkers.js';
import { compareVersions, durationFromEnv, makeKeySpace, planTransaction, Rng, type RecordedWrite } from './workload.js';

const H = (n: number) => `${String(n).padStart(15, '0')}.000000`;

function state(region: string, versions: [string, string, number, string, boolean][], live: [string, string][], stock: [number, bigint][] = []): RegionState {
  const s: RegionState = { region, versions: new Map(), live: new Map(['public.users', 'public.orders', 'public.documents', 'public.products'].map((t) => [t, new Set<string>()])), stock: new Map(stock), conflicts: 0, conflictsByTable: {} };
  for (const [t, pk, hlc, r, deleted] of versions) s.versions.set(`${t}\u0000${pk}`, { hlc: H(hlc), region: r, deleted });
  for (const [t, pk] of live) s.live.get(t)!.add(pk);
  return s;
}

const write = (pk: string, hlc: number, region: string, op: RecordedWrite['op'] = 'update'): RecordedWrite => ({ writer: `${region}/0`, table: 'public.users', pk, op, hlc: H(hlc), region, deleted: op === 'delete', txSeq: 1 });

describe('workload generator', () => {
  it('is deterministic for a seed and plans sorted, distinct, bounded transactions', () => {
    const keys = makeKeySpace(42);
    expect(makeKeySpace(42)).toEqual(keys);
    const a = new Rng(7);
    const b = new Rng(7);
    for (let i = 0; i < 60; i++) {
      const t = planTransaction(a, keys, 100);
      expect(planTransaction(b, keys, 100)).toEqual(t);
      expect(t.length).toBeGreaterThanOrEqual(1);
      expect(t.length).toBeLessThanOrEqual(100);
      const ids = t.map((p) => `${p.table}\u0000${p.pk}`);
      expect(new Set(ids).size).toBe(ids.length);
      expect([...ids].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))).toEqual(ids);
      for (const p of t) if (p.table === 'public.products') expect(['increment', 'update']).toContain(p.op);
    }
  });

  it('makes valid v4 uuids and reads the duration from the environment', () => {
    expect(new Rng(1).uuid()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(durationFromEnv({})).toBe(20_000);
    expect(durationFromEnv({ E2E_DURATION_S: '5' })).toBe(5000);
    expect(() => durationFromEnv({ E2E_DURATION_S: 'x' })).toThrow(/E2E_DURATION_S/);
  });

  it('orders versions by hlc, then region', () => {
    expect(compareVersions({ hlc: H(1), region: 'b' }, { hlc: H(2), region: 'a' })).toBe(-1);
    expect(compareVersions({ hlc: H(2), region: 'b' }, { hlc: H(2), region: 'a' })).toBe(1);
    expect(compareVersions({ hlc: H(2), region: 'a' }, { hlc: H(2), region: 'a' })).toBe(0);
  });
});

describe('checkers', () => {
  it('accepts present and superseded writes, flags older versions and lost outcomes', () => {
    const s = state('r1', [['public.users', 'a', 5, 'r1', false], ['public.users', 'b', 9, 'r2', true], ['public.users', 'c', 3, 'r1', false]], [['public.users', 'a']]);
    expect(checkNoLostWrite([write('a', 5, 'r1'), write('a', 4, 'r2'), write('b', 9, 'r2', 'delete'), write('b', 8, 'r1')], [s])).toEqual([]);
    const v = checkNoLostWrite([write('c', 4, 'r2'), write('a', 5, 'r1', 'delete'), write('z', 1, 'r1'), write('c', 3, 'r1')], [s]);
    expect(v.map((x) => x.detail)).toEqual([
      expect.stringContaining('older version'),
      expect.stringContaining('row is live'),
      expect.stringContaining('no version'),
      expect.stringContaining('row is absent'),
    ]);
  });

  it('finds resurrected rows and live rows older than a tombstone elsewhere', () => {
    const r1 = state('r1', [['public.users', 'a', 5, 'r1', true], ['public.users', 'b', 5, 'r1', true]], [['public.users', 'a']]);
    const r2 = state('r2', [['public.users', 'b', 4, 'r2', false], ['public.users', 'a', 5, 'r1', true]], [['public.users', 'b'], ['public.users', 'x']]);
    const v = checkNoResurrection([r1, r2]).map((x) => `${x.check} ${x.region} ${x.detail.split(' ')[1]}`);
    expect(v.sort()).toEqual(['resurrection r1 a', 'resurrection r2 b', 'unversioned-row r2 x']);
  });

  it('checks counters against initial plus every increment', () => {
    const s = state('r1', [], [], [[1, 15n], [2, 7n]]);
    const d = [{ region: 'r1', productId: 1, delta: 3 }, { region: 'r2', productId: 1, delta: 2 }];
    expect(checkCounters(new Map([[1, 10n], [2, 7n]]), d, [s])).toEqual([]);
    expect(checkCounters(new Map([[1, 10n], [2, 8n]]), d, [s])).toHaveLength(1);
  });

  it('parses Prometheus text with labels', () => {
    const m = parseMetrics('# HELP x\nregionsync_transactions_applied_total{source="eu-west-1",region="us-east-1"} 12\nplain 3\n');
    expect(m).toEqual([{ name: 'regionsync_transactions_applied_total', labels: { source: 'eu-west-1', region: 'us-east-1' }, value: 12 }, { name: 'plain', labels: {}, value: 3 }]);
  });

  it('compares applied with captured only where the destination outlived the source process', () => {
    const p = (region: string, startedAt: number, captured: number, applied: Record<string, number>): AgentProgress => ({ region, startedAt, captured, applied, skipped: {}, applyErrors: 0, conflicts: 0 });
    // b restarted after a: its counter misses what its previous process applied from a.
    expect(countShortfalls([p('a', 100, 50, { b: 10 }), p('b', 200, 10, { a: 20 })])).toEqual([]);
    // a started first and is short of b's captures: a real shortfall.
    expect(countShortfalls([p('a', 100, 50, { b: 9 }), p('b', 200, 10, { a: 20 })])).toEqual(['a applied 9/10 transactions from b']);
    // Same start: comparable both ways.
    expect(countShortfalls([p('a', 100, 5, { b: 3 }), p('b', 100, 3, { a: 4 })])).toEqual(['b applied 4/5 transactions from a']);
  });
});
