import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCodec } from './codec.js';
import { changeEnvelopeFastSchema, envelopeSchema } from './envelope.js';
import { exampleEnvelopes } from './examples.js';
import { rowChangeSchema } from './messages.js';
import { isValidRowChange } from './row-change-check.js';

// Each field is mostly well-formed and sometimes bent, independently: the interesting
// cases are the ones a hand-written check gets subtly wrong (optional fields, extra keys,
// __proto__, boundary lengths).
const bent = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) =>
  fc.oneof({ arbitrary: good, weight: 30 }, { arbitrary: bad, weight: 1 });
const region = bent(fc.constantFrom('eu-central-1', 'us-east-1', 'ap'), fc.constantFrom('x', 'EU', 'eu.west', '', 3));
const column = bent(
  fc.constantFrom('id', 'email', 'stock', 'constructor', 'toString', 'a'.repeat(200)),
  fc.constantFrom('', '__proto__', 'a'.repeat(201)),
);
const cell = bent(fc.oneof(fc.string(), fc.constant(null)), fc.oneof(fc.integer(), fc.boolean(), fc.constant(undefined)));
const hlc = bent(fc.constant('001700000000000.000001'), fc.constantFrom('001700000000000.00001', '1700000000000.000001', 'x'));
const cells = fc.dictionary(column, cell, { maxKeys: 3 });
const columnList = fc.array(bent(column, fc.integer()), { maxLength: 3 });
const counter = bent(
  fc.record({ region, total: bent(fc.constantFrom('12', '-3', '1.5'), fc.constantFrom('1.', 'x', '')) }),
  fc.oneof(fc.record({ region, total: fc.constant('1'), extra: fc.string() }), fc.record({ region }), fc.constant(1)),
);
const extra = bent(fc.constant(undefined), fc.string());
const row = fc
  .record(
    {
      table: bent(fc.constantFrom('public.users', `s.${'t'.repeat(198)}`), fc.constantFrom('users', 'a.b.c', 'public. x', `s.${'t'.repeat(199)}`, 7)),
      op: bent(fc.constantFrom('insert', 'update', 'delete'), fc.constantFrom('upsert', undefined)),
      key: bent(cells, fc.oneof(fc.constant(null), fc.array(fc.string()), fc.string())),
      values: bent(fc.option(cells, { nil: undefined }), fc.constant('x')),
      unchangedToast: fc.oneof(columnList, fc.constant(undefined)),
      counters: fc.oneof(fc.dictionary(column, counter, { maxKeys: 2 }), fc.constant(undefined)),
      redacted: fc.oneof(columnList, fc.constant(undefined)),
      version: bent(fc.record({ hlc, region }), fc.oneof(fc.record({ hlc, region, extra: fc.string() }), fc.record({ hlc }), fc.constant(undefined))),
    },
    { requiredKeys: ['table', 'op', 'key', 'version'] },
  )
  .chain((r) => extra.map((x) => (x === undefined ? r : { ...r, extra: x })));

// JSON round trip: what decode actually sees, including an own "__proto__" key.
const wire = (v: unknown): unknown => JSON.parse(JSON.stringify(v) ?? 'null') as unknown;

describe('isValidRowChange', () => {
  it('never accepts a row zod rejects, and accepts every row zod accepts', () => {
    let accepted = 0;
    let rejected = 0;
    fc.assert(
      fc.property(row, (r) => {
        for (const candidate of [r, wire(r)]) {
          const zodOk = rowChangeSchema.safeParse(candidate).success;
          expect(isValidRowChange(candidate)).toBe(zodOk);
          if (zodOk) accepted++;
          else rejected++;
        }
      }),
      { numRuns: 5000 },
    );
    // The generator must reach both sides often, or the test proves little.
    expect(accepted).toBeGreaterThan(2000);
    expect(rejected).toBeGreaterThan(2000);
  });

  it('leaves a __proto__ column (kept by JSON.parse, dropped by zod) to zod, which rejects it', () => {
    const r = JSON.parse('{"table":"public.t","op":"insert","key":{"__proto__":"1"},"version":{"hlc":"001700000000000.000001","region":"eu-central-1"}}') as unknown;
    expect(isValidRowChange(r)).toBe(false);
    expect(rowChangeSchema.safeParse(r).success).toBe(false);
  });
});

describe('change envelope fast path', () => {
  const codec = createCodec();
  const changes = exampleEnvelopes().filter((e) => e.kind === 'change');

  it('decodes every example change through the fast path to the same value as zod', () => {
    expect(changes.length).toBeGreaterThan(0);
    for (const e of changes) {
      const bytes = codec.encode(e);
      const value = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
      expect(changeEnvelopeFastSchema.safeParse(value).success).toBe(true);
      expect(codec.decode(bytes)).toEqual(envelopeSchema.parse(value));
    }
  });

  it('reports a bad row with the same error as the full schema', () => {
    const e = changes[0]!;
    const value = wire(e) as { body: { rows: Array<Record<string, unknown>> } };
    value.body.rows.push({ ...value.body.rows[0]!, op: 'upsert' });
    const bytes = new TextEncoder().encode(JSON.stringify(value));
    expect(() => codec.decode(bytes)).toThrowError(expect.objectContaining({ code: 'RS_PROTOCOL_SCHEMA', details: expect.objectContaining({ path: expect.stringContaining('op') }) }));
  });
});
