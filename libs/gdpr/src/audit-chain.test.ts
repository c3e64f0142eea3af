import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AUDIT_GENESIS_HASH, auditEventBodySchema, errorCode } from '@regionsync/protocol';
import { AUDIT_FIRST_SEQ, appendEntry, assertChain, auditKey, hashEntry, verifyChain, type AuditEntry, type AuditFields } from './audit-chain.js';
import { parseJsonLines, toCsv, toJsonLines } from './audit-export.js';
import { loadDemoPolicy } from './demo-policy.js';
import { EGRESS_REASONS, ERASURE_REASONS } from './reasons.js';

const fieldsArb: fc.Arbitrary<AuditFields> = fc.record(
  {
    region: fc.constant('eu-west-1'),
    at: fc.integer({ min: 0, max: 2 ** 42 }),
    kind: fc.constantFrom('withheld' as const, 'redacted' as const, 'refused' as const, 'relocated' as const, 'erasure-step' as const),
    table: fc.constantFrom('public.users', 'public.orders'),
    key: fc.record({ id: fc.uuid() }),
    destination: fc.constantFrom('us-east-1', 'eu-central-1'),
    reason: fc.constantFrom(...EGRESS_REASONS, ...ERASURE_REASONS),
  },
  { requiredKeys: ['region', 'at', 'kind', 'table', 'key', 'reason'] },
);

function chain(fields: AuditFields[]): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const f of fields) out.push(appendEntry(out.at(-1), f));
  return out;
}

const chainArb = fc.array(fieldsArb, { minLength: 1, maxLength: 12 }).map(chain);
const withIndex = chainArb.chain((c) => fc.record({ c: fc.constant(c), i: fc.nat({ max: c.length - 1 }) }));

function head(c: AuditEntry[]) {
  const last = c.at(-1) as AuditEntry;
  return { seq: last.seq, hash: last.hash };
}

describe('appendEntry', () => {
  it('chains from the genesis and produces protocol audit-event bodies', () => {
    const c = chain([
      { region: 'eu-west-1', at: 1, kind: 'withheld', table: 'public.users', key: { id: 'u1' }, destination: 'us-east-1', reason: 'destination-outside-jurisdiction' },
      { region: 'eu-west-1', at: 2, kind: 'erasure-step', table: 'public.users', key: { id: 'u1' }, reason: 'erasure-rows-deleted' },
    ]);
    expect(c[0]?.seq).toBe(AUDIT_FIRST_SEQ);
    expect(c[0]?.prevHash).toBe(AUDIT_GENESIS_HASH);
    expect(c[1]?.prevHash).toBe(c[0]?.hash);
    expect('destination' in (c[1] as object)).toBe(false);
    for (const e of c) expect(auditEventBodySchema.safeParse(e).success).toBe(true);
    const { hash, ...rest } = c[1] as AuditEntry;
    expect(hashEntry(rest)).toBe(hash);
  });
  it('rejects free-text reasons and a foreign region', () => {
    const fields = { region: 'eu-west-1', at: 1, kind: 'withheld', table: 'public.users', key: { id: 'u1' } } as const;
    expect(() => appendEntry(undefined, { ...fields, reason: 'email a@b.eu leaked' as 'erasure-failed' })).toThrow(/reason: expected a reason from the fixed audit vocabulary/);
    const first = appendEntry(undefined, { ...fields, reason: 'erasure-failed' });
    try {
      appendEntry(first, { ...fields, region: 'us-east-1', reason: 'erasure-failed' });
    } catch (e) {
      expect(errorCode(e)).toBe('RS_GDPR_AUDIT_CHAIN_BROKEN');
    }
  });
  it('keeps PII columns out of audit keys', () => {
    expect(auditKey(loadDemoPolicy(), 'public.users', { id: 'u1', email: 'a@b.eu' })).toEqual({ id: 'u1' });
  });
});

describe('verifyChain', () => {
  it('accepts an intact chain, continues from an anchor, and checks the published head', () => {
    fc.assert(
      fc.property(withIndex, ({ c, i }) => {
        expect(verifyChain(c)).toEqual({ ok: true, count: c.length });
        expect(verifyChain(c, { expectedHead: head(c) }).ok).toBe(true);
        const anchor = c[i] as AuditEntry;
        expect(verifyChain(c.slice(i + 1), { after: { seq: anchor.seq, hash: anchor.hash }, expectedHead: head(c) }).ok).toBe(true);
      }),
    );
  });

  it('detects every single-field edit of any entry', () => {
    const edits: ((e: AuditEntry) => AuditEntry)[] = [
      (e) => ({ ...e, at: e.at + 1 }),
      (e) => ({ ...e, reason: e.reason === 'erasure-failed' ? 'erasure-completed' : 'erasure-failed' }),
      (e) => ({ ...e, key: { id: 'someone-else' } }),
      (e) => ({ ...e, table: 'public.other' }),
      (e) => ({ ...e, destination: e.destination === undefined ? 'us-east-1' : undefined }),
      (e) => ({ ...e, kind: e.kind === 'withheld' ? 'redacted' : 'withheld' }),
      (e) => ({ ...e, seq: e.seq + 100 }),
      (e) => ({ ...e, prevHash: 'f'.repeat(64) }),
      (e) => ({ ...e, hash: 'e'.repeat(64) }),
    ];
    fc.assert(
      fc.property(withIndex, fc.nat({ max: edits.length - 1 }), ({ c, i }, k) => {
        const edited = c.map((e, j) => (j === i ? (edits[k] as (e: AuditEntry) => AuditEntry)(e) : e));
        expect(verifyChain(edited)).toEqual({ ok: false, atSeq: edited[i]?.seq, problem: 'edited' });
      }),
    );
  });

  it('detects an edit whose own hash was recomputed (by the next link, or the published head)', () => {
    fc.assert(
      fc.property(withIndex, ({ c, i }) => {
        const { hash: _h, ...rest } = c[i] as AuditEntry;
        const forged = { ...rest, at: rest.at + 1 };
        const edited = c.map((e, j) => (j === i ? { ...forged, hash: hashEntry(forged) } : e));
        const seq = (c[i] as AuditEntry).seq;
        expect(verifyChain(edited, { expectedHead: head(c) })).toEqual({ ok: false, atSeq: seq, problem: 'edited' });
        if (i < c.length - 1) expect(verifyChain(edited)).toEqual({ ok: false, atSeq: seq, problem: 'edited' });
      }),
    );
  });

  it('detects every single deletion', () => {
    fc.assert(
      fc.property(withIndex, ({ c, i }) => {
        const rest = c.filter((_, j) => j !== i);
        const seq = (c[i] as AuditEntry).seq;
        expect(verifyChain(rest, { expectedHead: head(c) })).toEqual({ ok: false, atSeq: seq, problem: 'deleted' });
        if (i < c.length - 1) expect(verifyChain(rest)).toEqual({ ok: false, atSeq: seq, problem: 'deleted' });
      }),
    );
  });

  it('detects every swap of two entries', () => {
    const pairArb = chainArb
      .filter((c) => c.length >= 2)
      .chain((c) => fc.record({ c: fc.constant(c), i: fc.nat({ max: c.length - 2 }), d: fc.integer({ min: 1, max: c.length - 1 }) }));
    fc.assert(
      fc.property(pairArb, ({ c, i, d }) => {
        const j = Math.min(i + d, c.length - 1);
        const swapped = [...c];
        [swapped[i], swapped[j]] = [c[j] as AuditEntry, c[i] as AuditEntry];
        expect(verifyChain(swapped)).toEqual({ ok: false, atSeq: (c[i] as AuditEntry).seq, problem: 'reordered' });
      }),
    );
  });

  it('detects a chain that does not start at the genesis, and duplicates', () => {
    const c = chain([
      { region: 'eu-west-1', at: 1, kind: 'withheld', table: 'public.users', key: { id: 'u1' }, reason: 'pii-outside-jurisdiction' },
      { region: 'eu-west-1', at: 2, kind: 'withheld', table: 'public.users', key: { id: 'u2' }, reason: 'pii-outside-jurisdiction' },
    ]);
    const { hash: _h, ...first } = c[0] as AuditEntry;
    const rooted = { ...first, prevHash: 'a'.repeat(64) };
    expect(verifyChain([{ ...rooted, hash: hashEntry(rooted) }])).toEqual({ ok: false, atSeq: 1, problem: 'bad-genesis' });
    expect(verifyChain([c[0] as AuditEntry, c[0] as AuditEntry])).toEqual({ ok: false, atSeq: 1, problem: 'reordered' });
    expect(verifyChain([])).toEqual({ ok: true, count: 0 });
    expect(() => assertChain([c[1] as AuditEntry])).toThrow('audit ledger of eu-west-1: deleted at seq 1');
  });
});

describe('exports', () => {
  it('round-trips JSON Lines and keeps the chain verifiable', () => {
    fc.assert(
      fc.property(chainArb, (c) => {
        const back = parseJsonLines(toJsonLines(c));
        expect(back).toEqual(c);
        expect(verifyChain(back).ok).toBe(true);
      }),
      { numRuns: 50 },
    );
  });
  it('rejects malformed lines naming the line and field', () => {
    expect(() => parseJsonLines('{"region":"eu-west-1"}\n')).toThrow(/line 1: seq: required field missing/);
    expect(() => parseJsonLines('\nnot json')).toThrow('line 2: expected a JSON object');
  });
  it('writes RFC 4180 CSV with a header, quoting and formula guard', () => {
    const c = chain([
      { region: 'eu-west-1', at: 5, kind: 'redacted', table: '=cmd.x', key: { id: 'u1', n: '2' }, destination: 'us-east-1', reason: 'pii-outside-jurisdiction' },
    ]);
    const lines = toCsv(c).split('\r\n');
    expect(lines[0]).toBe('region,seq,at,kind,table,key,destination,reason,prevHash,hash');
    expect(lines[1]).toBe(`eu-west-1,1,5,redacted,'=cmd.x,"{""id"":""u1"",""n"":""2""}",us-east-1,pii-outside-jurisdiction,${AUDIT_GENESIS_HASH},${c[0]?.hash}`);
  });
});
