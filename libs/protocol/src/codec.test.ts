import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCodec, DEFAULT_MAX_BYTES, parseEnvelope } from './codec.js';
import { ENVELOPE_KINDS, makeEnvelope, type Envelope } from './envelope.js';
import { isRegionsyncError, RegionsyncError, type ErrorCode } from './errors.js';
import { exampleEnvelopes } from './examples.js';

const codec = createCodec();
const enc = new TextEncoder();
const bytesOf = (value: unknown): Uint8Array => enc.encode(JSON.stringify(value));
const change = (): Extract<Envelope, { kind: 'change' }> => {
  const e = exampleEnvelopes()[0];
  if (e?.kind !== 'change') throw new Error('fixture order changed');
  return e;
};

function decodeError(bytes: Uint8Array): RegionsyncError {
  const r = codec.tryDecode(bytes);
  if (r.ok) throw new Error('expected decode to fail');
  return r.error;
}

function expectCode(bytes: Uint8Array, code: ErrorCode, message?: string | RegExp): RegionsyncError {
  const err = decodeError(bytes);
  expect(err).toBeInstanceOf(RegionsyncError);
  expect(err.code).toBe(code);
  if (typeof message === 'string') expect(err.message).toBe(message);
  else if (message) expect(err.message).toMatch(message);
  return err;
}

describe('codec round-trip', () => {
  it('has an example for every kind', () => {
    const kinds = new Set(exampleEnvelopes().map((e) => e.kind));
    expect([...kinds].sort()).toEqual([...ENVELOPE_KINDS].sort());
  });

  it.each(exampleEnvelopes().map((e) => [`${e.kind}/${e.id}`, e] as const))('%s', (_name, envelope) => {
    const bytes = codec.encode(envelope);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(codec.decode(bytes)).toEqual(envelope);
  });

  it('keeps values lossless, including NULL, empty strings and non-BMP text', () => {
    const e = change();
    e.body.rows[0]!.values = { a: '', b: null, c: '😀 naïve \u0000', d: '1e400', e: '-0' };
    expect(codec.decode(codec.encode(e))).toEqual(e);
  });

  it('makeEnvelope gives changes their deterministic idempotency id', () => {
    const e = makeEnvelope('change', 'us-east-1', { ...change().body, commitLsn: '0/016B3748', chunk: { index: 2, last: false } });
    expect(e.id).toBe('us-east-1:0/16B3748:2');
    expect(e.v).toBe(1);
    expect(e.sentAt).toBeGreaterThan(0);
    expect(codec.decode(codec.encode(e))).toEqual(e);
  });

  it('makeEnvelope gives other kinds a fresh id unless one is passed', () => {
    const body = { requestId: 'r', region: 'eu-west-1', status: 'pinned' } as const;
    const a = makeEnvelope('content-status', 'eu-west-1', body);
    const b = makeEnvelope('content-status', 'eu-west-1', body);
    expect(a.id).not.toBe(b.id);
    expect(makeEnvelope('content-status', 'eu-west-1', body, 'fixed').id).toBe('fixed');
    expect(codec.decode(codec.encode(a))).toEqual(a);
  });
});

describe('codec rejects bad input with the right code', () => {
  it('non-UTF-8 bytes', () => {
    expectCode(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 'RS_PROTOCOL_DECODE', 'message is not valid UTF-8');
  });

  it('truncated JSON, without quoting the input', () => {
    const full = codec.encode(change());
    const err = expectCode(full.subarray(0, full.length - 7), 'RS_PROTOCOL_DECODE', /^message is not valid JSON/);
    expect(err.message).not.toContain('orders');
    expect(err.cause).toBeUndefined();
  });

  it('empty input and non-bytes', () => {
    expectCode(new Uint8Array(), 'RS_PROTOCOL_DECODE');
    expectCode('{}' as unknown as Uint8Array, 'RS_PROTOCOL_DECODE', 'message: expected bytes (Uint8Array)');
  });

  it('wrong version', () => {
    const err = expectCode(bytesOf({ ...change(), v: 2 }), 'RS_PROTOCOL_VERSION', 'v: unsupported envelope version 2, this build speaks 1');
    expect(err.retryable).toBe(false);
  });

  it('missing or non-numeric version is a schema error', () => {
    const { v: _v, ...rest } = change();
    expectCode(bytesOf(rest), 'RS_PROTOCOL_SCHEMA', 'v: required field missing (expected 1)');
    expectCode(bytesOf({ ...change(), v: '1' }), 'RS_PROTOCOL_SCHEMA', 'v: expected 1');
  });

  it('non-object JSON', () => {
    expectCode(bytesOf([1, 2]), 'RS_PROTOCOL_SCHEMA', /^\(root\): /);
    expectCode(bytesOf(null), 'RS_PROTOCOL_SCHEMA', /^\(root\): /);
  });

  it('unknown kind', () => {
    expectCode(bytesOf({ ...change(), kind: 'gossip' }), 'RS_PROTOCOL_SCHEMA', /^kind: expected one of change\|heartbeat\|/);
  });

  it('unknown field at top level and deep inside', () => {
    expectCode(bytesOf({ ...change(), extra: 1 }), 'RS_PROTOCOL_SCHEMA', '(root): unknown field extra');
    const e = change();
    (e.body.rows[0] as Record<string, unknown>)['colour'] = 'red';
    expectCode(bytesOf(e), 'RS_PROTOCOL_SCHEMA', 'body.rows.0: unknown field colour');
  });

  it('wrong enum names path and options, never the value', () => {
    const e = change();
    (e.body.rows[0] as Record<string, unknown>)['op'] = 'secret-value-upsert';
    const err = expectCode(bytesOf(e), 'RS_PROTOCOL_SCHEMA', 'body.rows.0.op: expected one of insert|update|delete');
    expect(err.message).not.toContain('secret');
    expect(JSON.stringify(err)).not.toContain('secret');
    expect(err.details).toMatchObject({ path: 'body.rows.0.op', issue: 'invalid_enum_value' });
  });

  it('wrong value type in a row never shows the value', () => {
    const e = change();
    (e.body.rows[0]!.values as Record<string, unknown>)['email'] = 12345678;
    const err = expectCode(bytesOf(e), 'RS_PROTOCOL_SCHEMA', 'body.rows.0.values.email: expected string, received number');
    expect(err.message).not.toContain('12345678');
  });

  it('bad formats in nested fields', () => {
    const cases: Array<[(e: ReturnType<typeof change>) => void, string]> = [
      [(e) => void (e.body.commitLsn = '16-B374'), 'body.commitLsn: expected LSN like 16/B374D848'],
      [(e) => void (e.body.hlc = '1714560000000.0'), 'body.hlc: expected HLC like'],
      [(e) => void (e.body.destination = 'EU.West'), 'body.destination: expected region name'],
      [(e) => void (e.body.commitTime = '2024-05-01 10:40:00+00'), 'body.commitTime: expected ISO 8601 timestamp'],
      [(e) => void (e.body.vclock = { 'bad.region': '001714560000000.000000' }), 'body.vclock.bad.region: expected region name'],
      [(e) => void (e.body.rows[0]!.table = 'orders'), 'body.rows.0.table: expected table name as schema.table'],
      [(e) => void (e.body.xid = -1), 'body.xid: expected number >= 0'],
      [(e) => void (e.body.chunk.index = 1.5), 'body.chunk.index: expected integer, received float'],
    ];
    for (const [mutate, prefix] of cases) {
      const e = change();
      mutate(e);
      expect(decodeError(bytesOf(e)).message.startsWith(prefix), decodeError(bytesOf(e)).message).toBe(true);
    }
  });

  it('content-pin needs a cid to pin and an s3 object to copy', () => {
    const pin = exampleEnvelopes().find((e) => e.kind === 'content-pin')!;
    const body = { ...pin.body } as Record<string, unknown>;
    delete body['cid'];
    expectCode(bytesOf({ ...pin, body }), 'RS_PROTOCOL_SCHEMA', 'body.cid: expected cid when action is pin');
    expectCode(bytesOf({ ...pin, body: { ...body, action: 'copy' } }), 'RS_PROTOCOL_SCHEMA', 'body.s3: expected s3 object when action is copy');
  });

  it('cache invalidation needs at least one key; control needs a known action', () => {
    const ci = exampleEnvelopes().find((e) => e.kind === 'cache-invalidation')!;
    expectCode(bytesOf({ ...ci, body: { ...ci.body, keys: [] } }), 'RS_PROTOCOL_SCHEMA', 'body.keys: expected at least 1 item');
    const ctl = exampleEnvelopes().find((e) => e.kind === 'control')!;
    expectCode(bytesOf({ ...ctl, body: { action: 'reboot' } }), 'RS_PROTOCOL_SCHEMA', /^body.action: expected one of cluster-view\|mode-change/);
  });

  it('rejects a __proto__ column instead of silently dropping it', () => {
    const text = JSON.stringify(change()).replace('"values":{"id":"42"', '"values":{"__proto__":"x","id":"42"');
    expectCode(enc.encode(text), 'RS_PROTOCOL_SCHEMA', 'body.rows.0.values.__proto__: expected column name other than __proto__');
  });

  it('bounds hostile field names in messages', () => {
    const key = `k${'x'.repeat(5000)}\n`;
    const err = expectCode(bytesOf({ ...change(), [key]: 1 }), 'RS_PROTOCOL_SCHEMA');
    expect(err.message.length).toBeLessThan(200);
    expect(err.message).not.toContain('\n');
  });

  it('survives absurd nesting', () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    expect(isRegionsyncError(decodeError(enc.encode(deep)))).toBe(true);
    const e = change();
    const text = JSON.stringify(e).replace('"xid":4242', `"xid":${deep}`);
    expectCode(enc.encode(text), 'RS_PROTOCOL_SCHEMA', 'body.xid: expected number, received array');
  });
});

describe('size limit', () => {
  it('defaults to 4 MiB', () => {
    expect(codec.maxBytes).toBe(DEFAULT_MAX_BYTES);
    expect(DEFAULT_MAX_BYTES).toBe(4 * 1024 * 1024);
  });

  it('encode rejects oversize naming size and limit', () => {
    const small = createCodec({ maxBytes: 1000 });
    const e = change();
    e.body.rows[0]!.values = { blob: 'x'.repeat(2000) };
    let err: unknown;
    try {
      small.encode(e);
    } catch (caught) {
      err = caught;
    }
    expect(isRegionsyncError(err) && err.code).toBe('RS_PROTOCOL_TOO_LARGE');
    expect((err as Error).message).toMatch(/^encoded message is \d+ bytes, limit is 1000 bytes$/);
  });

  it('decode rejects oversize before parsing', () => {
    const small = createCodec({ maxBytes: 10 });
    const r = small.tryDecode(new Uint8Array(11));
    expect(!r.ok && r.error.code).toBe('RS_PROTOCOL_TOO_LARGE');
    expect(!r.ok && r.error.details).toEqual({ size: 11, limit: 10 });
  });

  it('rejects a nonsensical limit', () => {
    expect(() => createCodec({ maxBytes: 0 })).toThrow(RegionsyncError);
  });
});

describe('encode validates', () => {
  it('throws RS_PROTOCOL_SCHEMA for an invalid envelope', () => {
    const e = { ...change(), source: 'Not A Region' } as Envelope;
    expect(() => codec.encode(e)).toThrow(/source: expected region name/);
  });

  it('parseEnvelope accepts already-parsed values', () => {
    const e = change();
    expect(parseEnvelope(JSON.parse(JSON.stringify(e)))).toEqual(e);
  });
});

describe('decode fuzzing', () => {
  const assertOnlyRegionsyncErrors = (bytes: Uint8Array): void => {
    try {
      codec.decode(bytes);
    } catch (e) {
      if (!isRegionsyncError(e)) throw e;
      expect(['RS_PROTOCOL_DECODE', 'RS_PROTOCOL_SCHEMA', 'RS_PROTOCOL_VERSION', 'RS_PROTOCOL_TOO_LARGE']).toContain(e.code);
    }
  };

  it('arbitrary bytes only ever produce RegionsyncError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => assertOnlyRegionsyncErrors(bytes)), { numRuns: 2000 });
  });

  it('arbitrary JSON values only ever produce RegionsyncError', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => assertOnlyRegionsyncErrors(bytesOf(value))), { numRuns: 1000 });
  });

  it('envelope-shaped JSON with arbitrary bodies only ever produces RegionsyncError', () => {
    const shaped = fc.record({
      v: fc.constantFrom(1, 2, '1'),
      kind: fc.constantFrom(...ENVELOPE_KINDS, 'nope'),
      id: fc.string(),
      source: fc.constantFrom('us-east-1', 'X'),
      sentAt: fc.oneof(fc.nat(), fc.double()),
      body: fc.oneof(fc.jsonValue(), fc.dictionary(fc.constantFrom('action', 'rows', 'region', 'keys', 'hlc'), fc.jsonValue())),
    });
    fc.assert(fc.property(shaped, (value) => assertOnlyRegionsyncErrors(bytesOf(value))), { numRuns: 1000 });
  });

  it('mutated valid envelopes decode or fail with RegionsyncError', () => {
    const valid = exampleEnvelopes().map((e) => codec.encode(e));
    fc.assert(
      fc.property(fc.nat({ max: valid.length - 1 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (which, at, byte) => {
        const bytes = Uint8Array.from(valid[which]!);
        bytes[at % bytes.length] = byte;
        assertOnlyRegionsyncErrors(bytes);
      }),
      { numRuns: 2000 },
    );
  });
});
