import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCodec } from './codec.js';
import { isValidChangeEnvelope, isValidRowChange } from './change-check.js';
import { changeEnvelopeSchema, envelopeSchema } from './envelope.js';
import { exampleEnvelopes } from './examples.js';
import { rowChangeSchema } from './messages.js';

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
const total = bent(fc.constantFrom('12', '-3', '1.5'), fc.constantFrom('1.', 'x', ''));
const counter = bent(
  fc.oneof(fc.record({ region, total }), fc.record({ region, total, base: bent(fc.constantFrom('7', '-2'), fc.constantFrom('1.5', 'x', '')) })),
  fc.oneof(fc.record({ region, total: fc.constant('1'), extra: fc.string() }), fc.record({ region }), fc.record({ region, base: fc.constant('7') }), fc.constant(1)),
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

/** Runs `check` on every generated value and on its JSON round trip; counts zod's verdicts. */
function againstZod<T>(arb: fc.Arbitrary<T>, numRuns: number, schema: { safeParse(v: unknown): { success: boolean } }, check: (candidate: unknown, zodOk: boolean) => void) {
  let accepted = 0;
  let rejected = 0;
  fc.assert(
    fc.property(arb, (v) => {
      for (const candidate of [v, wire(v)]) {
        const zodOk = schema.safeParse(candidate).success;
        check(candidate, zodOk);
        if (zodOk) accepted++;
        else rejected++;
      }
    }),
    { numRuns },
  );
  return { accepted, rejected };
}

describe('isValidRowChange', () => {
  it('never accepts a row zod rejects, and accepts every row zod accepts', () => {
    const { accepted, rejected } = againstZod(row, 5000, rowChangeSchema, (candidate, zodOk) => expect(isValidRowChange(candidate)).toBe(zodOk));
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

const lsn = bent(fc.constantFrom('0/16B3748', 'FFFFFFFF/0'), fc.constantFrom('0/', '16B3748', '1/2/3', '123456789/0'));
const isoTime = bent(
  fc.constantFrom('2026-11-23T18:00:00.123456Z', '2026-11-23T18:00:00+01:00', '2024-02-29T23:59:59.9-0530'),
  fc.constantFrom('2026-13-23T18:00:00Z', '2026-11-23 18:00:00Z', '2026-11-23T18:00:00', '2026-11-23T24:00:00Z', ''),
);
const nonNegInt = bent(fc.nat(), fc.oneof(fc.constant(-1), fc.constant(1.5), fc.constant(Number.NaN), fc.constant(Infinity), fc.constant('1')));
const vclock = fc.dictionary(region, hlc, { maxKeys: 3 });
const schemas = fc.dictionary(
  bent(fc.constantFrom('public.users', 'a'.repeat(200)), fc.constantFrom('', '__proto__', 'a'.repeat(201))),
  bent(fc.constantFrom('id:20,email:25', 'x'.repeat(20_000)), fc.oneof(fc.constant('x'.repeat(20_001)), fc.constant(3))),
  { maxKeys: 2 },
);
const body = fc
  .record(
    {
      sourceRegion: region,
      destination: region,
      commitLsn: lsn,
      commitTime: isoTime,
      xid: nonNegInt,
      hlc,
      vclock: bent(vclock, fc.constantFrom(null, [], 'x')),
      chunk: bent(fc.record({ index: nonNegInt, last: fc.boolean() }), fc.oneof(fc.record({ index: fc.nat() }), fc.record({ index: fc.nat(), last: fc.constant(1) }))),
      rows: bent(fc.array(row, { maxLength: 3 }), fc.constantFrom(null, {}, 'x')),
      schemas: fc.option(schemas, { nil: undefined }),
    },
    { requiredKeys: ['sourceRegion', 'destination', 'commitLsn', 'commitTime', 'xid', 'hlc', 'vclock', 'chunk', 'rows'] },
  )
  .chain((b) => extra.map((x) => (x === undefined ? b : { ...b, extra: x })));
const envelope = fc
  .record({
    v: bent(fc.constant(1), fc.constantFrom(2, '1')),
    kind: bent(fc.constant('change'), fc.constantFrom('heartbeat', 'Change')),
    id: bent(fc.constantFrom('us-east-1:0/16B3748:0', 'a'.repeat(256)), fc.constantFrom('', 'a b', 'a'.repeat(257))),
    source: region,
    sentAt: nonNegInt,
    body,
  })
  .chain((e) => extra.map((x) => (x === undefined ? e : { ...e, extra: x })));

describe('isValidChangeEnvelope', () => {
  it('accepts what zod accepts and nothing zod rejects', () => {
    const { accepted, rejected } = againstZod(envelope, 3000, changeEnvelopeSchema, (candidate, zodOk) => {
      // Never accepts what zod rejects. The one thing it leaves to zod although zod
      // accepts it: a "__proto__" layout key, which zod drops from its output.
      if (isValidChangeEnvelope(candidate)) expect(zodOk).toBe(true);
      else if (zodOk) expect(Object.keys((candidate as { body: { schemas?: object } }).body.schemas ?? {})).toContain('__proto__');
    });
    expect(accepted).toBeGreaterThan(500);
    expect(rejected).toBeGreaterThan(500);
  });
});

describe('codec on change envelopes', () => {
  const codec = createCodec();
  const changes = exampleEnvelopes().filter((e) => e.kind === 'change');

  it('decodes every example change without zod to the value zod would give', () => {
    expect(changes.length).toBeGreaterThan(0);
    for (const e of changes) {
      const bytes = codec.encode(e);
      const value = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
      expect(isValidChangeEnvelope(value)).toBe(true);
      expect(codec.decode(bytes)).toEqual(envelopeSchema.parse(value));
    }
  });

  it('reports a bad row with the error of the full schema', () => {
    const e = changes[0]!;
    const value = wire(e) as { body: { rows: Array<Record<string, unknown>> } };
    value.body.rows.push({ ...value.body.rows[0]!, op: 'upsert' });
    const bytes = new TextEncoder().encode(JSON.stringify(value));
    expect(() => codec.decode(bytes)).toThrowError(expect.objectContaining({ code: 'RS_PROTOCOL_SCHEMA', details: expect.objectContaining({ path: expect.stringContaining('op') }) }));
  });
});
