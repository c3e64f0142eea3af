import { describe, expect, it } from 'vitest';
import { BASE_CONTRIBUTION, counterValue, mergeRow, type RowState } from '@regionsync/conflict';
import { liveRowChanges, type VersionRow } from './snapshot.js';

const strategy = { kind: 'row-lww' as const, counterColumns: ['stock'] };
const v = (hlc: string, region: string) => ({ hlc: `00179559${hlc}.000000`, region });

function receive(row: VersionRow & Record<string, unknown>): RowState {
  let state: RowState | undefined;
  for (const change of liveRowChanges('public.products', ['id'], row, 'us-east-1')) state = mergeRow(state, change, strategy).state;
  return state!;
}

describe('liveRowChanges (a full copy of one row)', () => {
  it('sends a counter base as the plain value and each region contribution as its own change: the receiver sums them', () => {
    const row = {
      id: '7', name: 'p', stock: '11', hlc: v('0000002', 'eu-west-1').hlc, region: 'eu-west-1', deleted: false, redacted: null, __pk: '7',
      counters: { stock: { [BASE_CONTRIBUTION]: { total: '1', version: { hlc: '000000000000000.000000', region: BASE_CONTRIBUTION } }, 'us-east-1': { total: '8', version: v('0000001', 'us-east-1') }, 'eu-west-1': { total: '2', version: v('0000002', 'eu-west-1') } } },
    };
    const changes = liveRowChanges('public.products', ['id'], row, 'us-east-1');
    expect(changes[0]).toMatchObject({ op: 'insert', key: { id: '7' }, values: { id: '7', name: 'p', stock: '1' } });
    expect(changes.slice(1).map((c) => c.counters?.['stock']?.region).sort()).toEqual(['eu-west-1', 'us-east-1']);
    expect(counterValue(receive(row), 'stock')).toBe(11n);
  });

  it('leaves a counter column with contributions and no base out of the row values; one without any travels as its value', () => {
    const counted = { id: '8', stock: '5', hlc: v('0000003', 'us-east-1').hlc, region: 'us-east-1', deleted: false, __pk: '8', counters: { stock: { 'us-east-1': { total: '5', version: v('0000003', 'us-east-1') } } } };
    expect(liveRowChanges('public.products', ['id'], counted, 'us-east-1')[0]!.values).toEqual({ id: '8' });
    expect(counterValue(receive(counted), 'stock')).toBe(5n);
    // A row from before regionsync: no version at all.
    const plain = { id: '9', stock: '4', hlc: null, region: null, deleted: null, counters: null, __pk: '9' };
    expect(liveRowChanges('public.products', ['id'], plain, 'us-east-1')).toHaveLength(1);
    expect(counterValue(receive(plain), 'stock')).toBe(4n);
  });
});
