// Property tests of the residency decisions over generated policies, rows and regions.
// The expectations are computed from the policy document independently of residency.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { egressDecision, ingressDecision } from './decide.js';
import { validatePolicy } from './load-policy.js';
import { applyRedaction } from './redaction.js';

const TABLE = 'public.t';
const HASH_KEY = 'property-test-hash-key-0123456789';
// us-east-1 and eu-west-1 are always present so US destinations and EU rows exist.
const OPTIONAL_REGIONS: [string, string][] = [
  ['us-west-2', 'us'],
  ['eu-central-1', 'eu'],
  ['ap-southeast-1', 'apac'],
];

interface Doc {
  regions: Record<string, string>;
  residency: 'global' | { homeRegionColumn: string } | { jurisdiction: string };
  pii: Record<string, { action: 'redact' | 'hash' }>;
  consent: boolean;
  destinations: Record<string, { allowPii: boolean }>;
  /** Jurisdiction → residency mode written in the file (absent: strict). */
  jurisdictions: Record<string, { residency: 'strict' | 'open' }>;
}

const docArb: fc.Arbitrary<Doc> = fc
  .record({
    extra: fc.subarray(OPTIONAL_REGIONS),
    residency: fc.constantFrom<Doc['residency']>('global', { homeRegionColumn: 'home' }, { jurisdiction: 'eu' }, { jurisdiction: 'us' }),
    email: fc.option(fc.constantFrom('redact' as const, 'hash' as const), { nil: undefined }),
    name: fc.option(fc.constantFrom('redact' as const, 'hash' as const), { nil: undefined }),
    consent: fc.boolean(),
    allow: fc.array(fc.tuple(fc.constantFrom('us-east-1', 'eu-west-1', 'us-west-2', 'eu-central-1', 'ap-southeast-1'), fc.boolean()), { maxLength: 3 }),
    modes: fc.record({ us: fc.option(fc.constantFrom('strict' as const, 'open' as const), { nil: undefined }), eu: fc.option(fc.constantFrom('strict' as const, 'open' as const), { nil: undefined }), apac: fc.option(fc.constantFrom('strict' as const, 'open' as const), { nil: undefined }) }),
  })
  .map(({ extra, residency, email, name, consent, allow, modes }) => {
    const regions: Record<string, string> = { 'us-east-1': 'us', 'eu-west-1': 'eu', ...Object.fromEntries(extra) };
    const pii: Doc['pii'] = {};
    if (email !== undefined) pii.email = { action: email };
    if (name !== undefined) pii.name = { action: name };
    const hasPii = Object.keys(pii).length > 0;
    const destinations = Object.fromEntries(allow.filter(([r]) => r in regions).map(([r, a]) => [r, { allowPii: a }]));
    const used = new Set(Object.values(regions));
    const jurisdictions = Object.fromEntries(
      Object.entries(modes).flatMap(([j, m]) => (m !== undefined && used.has(j) ? [[j, { residency: m }]] : [])),
    );
    return { regions, residency, pii, consent: consent && hasPii, destinations: hasPii ? destinations : {}, jurisdictions };
  });

function toPolicy(doc: Doc) {
  const exceptions = {
    ...(doc.consent ? { consentColumn: 'consent' } : {}),
    ...(Object.keys(doc.destinations).length > 0 ? { destinations: doc.destinations } : {}),
  };
  return validatePolicy({
    version: 1,
    regions: doc.regions,
    hashKeyEnv: 'PII_KEY',
    ...(Object.keys(doc.jurisdictions).length > 0 ? { jurisdictions: doc.jurisdictions } : {}),
    tables: {
      [TABLE]: {
        residency: doc.residency,
        pii: doc.pii,
        ...(Object.keys(exceptions).length > 0 ? { exceptions } : {}),
      },
    },
  });
}

const value = fc.option(fc.string({ maxLength: 12 }).filter((s) => !s.startsWith('hmac')), { nil: null });
const rowArb = fc.record(
  {
    id: fc.uuid(),
    home: fc.option(fc.constantFrom('us-east-1', 'eu-west-1', 'us-west-2', 'eu-central-1', 'ap-southeast-1', 'mars-1'), { nil: null }),
    email: value,
    name: value,
    consent: fc.constantFrom('t', 'f', 'true', 'false', null),
    note: value,
  },
  { requiredKeys: ['id'] },
);

const caseArb = docArb.chain((doc) => {
  const regions = Object.keys(doc.regions);
  return fc.record({
    doc: fc.constant(doc),
    row: rowArb,
    source: fc.constantFrom(...regions),
    destination: fc.constantFrom(...regions),
  });
});

/** Jurisdiction of a resident row by the policy text (unknown home: the source's), undefined for global. */
function rowJurisdiction(doc: Doc, row: Record<string, string | null | undefined>, source: string): string | undefined {
  if (doc.residency === 'global') return undefined;
  if ('jurisdiction' in doc.residency) return doc.residency.jurisdiction;
  const home = row.home;
  return typeof home === 'string' && home in doc.regions ? doc.regions[home] : doc.regions[source];
}

function strict(doc: Doc, jurisdiction: string): boolean {
  return doc.jurisdictions[jurisdiction]?.residency !== 'open';
}

/** EU-resident in a strict EU: fixed eu, or a home naming an EU region (or unknown home written in the EU). */
function euResident(doc: Doc, row: Record<string, string | null | undefined>, source: string): boolean {
  return rowJurisdiction(doc, row, source) === 'eu' && strict(doc, 'eu');
}

describe('residency properties', () => {
  it('an EU-resident row is never sent or redacted to a US destination', () => {
    fc.assert(
      fc.property(caseArb, ({ doc, row, source, destination }) => {
        const policy = toPolicy(doc);
        const d = egressDecision(policy, { table: TABLE, row, sourceRegion: source, destination });
        if (euResident(doc, row, source) && doc.regions[destination] === 'us') expect(d.action).toBe('withhold');
        const j = rowJurisdiction(doc, row, source);
        if (d.action !== 'withhold' && j !== undefined && strict(doc, j)) {
          // A strict jurisdiction's row travels only inside it.
          expect(doc.regions[destination]).toBe(j);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('an open jurisdiction row reaches every region, with its PII only where the PII may go', () => {
    fc.assert(
      fc.property(caseArb, ({ doc, row, source, destination }) => {
        const j = rowJurisdiction(doc, row, source);
        if (j === undefined || strict(doc, j)) return;
        const policy = toPolicy(doc);
        const d = egressDecision(policy, { table: TABLE, row, sourceRegion: source, destination });
        expect(d.action).not.toBe('withhold');
        const hasPii = Object.keys(doc.pii).some((c) => typeof row[c as keyof typeof row] === 'string');
        const rule = doc.destinations[destination]?.allowPii;
        const consented = doc.consent && (row.consent === 't' || row.consent === 'true');
        const piiMayGo = rule !== false && (doc.regions[destination] === j || rule === true || consented);
        expect(d.action).toBe(hasPii && !piiMayGo ? 'redact' : 'send');
      }),
      { numRuns: 1000 },
    );
  });

  it('ingress never refuses what egress sent (after redaction)', () => {
    fc.assert(
      fc.property(caseArb, ({ doc, row, source, destination }) => {
        const policy = toPolicy(doc);
        const d = egressDecision(policy, { table: TABLE, row, sourceRegion: source, destination });
        if (d.action === 'withhold') return;
        const sent = d.action === 'redact' ? applyRedaction(row, d.columns, d.actions, HASH_KEY) : row;
        expect(ingressDecision(policy, { table: TABLE, row: sent, sourceRegion: source, localRegion: destination })).toEqual({ action: 'accept' });
      }),
      { numRuns: 1000 },
    );
  });

  it('ingress refuses what egress withheld for residency, and unredacted PII', () => {
    fc.assert(
      fc.property(caseArb, ({ doc, row, source, destination }) => {
        const policy = toPolicy(doc);
        const d = egressDecision(policy, { table: TABLE, row, sourceRegion: source, destination });
        const i = ingressDecision(policy, { table: TABLE, row, sourceRegion: source, localRegion: destination });
        if (d.action === 'withhold') expect(i).toMatchObject({ action: 'refuse', reason: 'local-outside-jurisdiction' });
        if (d.action === 'redact') expect(i).toMatchObject({ action: 'refuse', reason: 'unredacted-pii' });
        if (d.action === 'send') expect(i).toEqual({ action: 'accept' });
      }),
      { numRuns: 1000 },
    );
  });

  it('a redacted row carries no original PII value', () => {
    fc.assert(
      fc.property(caseArb, ({ doc, row, source, destination }) => {
        const policy = toPolicy(doc);
        const d = egressDecision(policy, { table: TABLE, row, sourceRegion: source, destination });
        if (d.action !== 'redact') return;
        const sent = applyRedaction(row, d.columns, d.actions, HASH_KEY);
        for (const c of d.columns) {
          expect(sent[c]).not.toBe(row[c as keyof typeof row]);
        }
        // Non-PII columns travel unchanged.
        expect(sent.id).toBe(row.id);
        expect(sent.home).toBe(row.home);
      }),
      { numRuns: 500 },
    );
  });
});
