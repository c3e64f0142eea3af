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
}

const docArb: fc.Arbitrary<Doc> = fc
  .record({
    extra: fc.subarray(OPTIONAL_REGIONS),
    residency: fc.constantFrom<Doc['residency']>('global', { homeRegionColumn: 'home' }, { jurisdiction: 'eu' }, { jurisdiction: 'us' }),
    email: fc.option(fc.constantFrom('redact' as const, 'hash' as const), { nil: undefined }),
    name: fc.option(fc.constantFrom('redact' as const, 'hash' as const), { nil: undefined }),
    consent: fc.boolean(),
    allow: fc.array(fc.tuple(fc.constantFrom('us-east-1', 'eu-west-1', 'us-west-2', 'eu-central-1', 'ap-southeast-1'), fc.boolean()), { maxLength: 3 }),
  })
  .map(({ extra, residency, email, name, consent, allow }) => {
    const regions: Record<string, string> = { 'us-east-1': 'us', 'eu-west-1': 'eu', ...Object.fromEntries(extra) };
    const pii: Doc['pii'] = {};
    if (email !== undefined) pii.email = { action: email };
    if (name !== undefined) pii.name = { action: name };
    const hasPii = Object.keys(pii).length > 0;
    const destinations = Object.fromEntries(allow.filter(([r]) => r in regions).map(([r, a]) => [r, { allowPii: a }]));
    return { regions, residency, pii, consent: consent && hasPii, destinations: hasPii ? destinations : {} };
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

/** EU-resident by the policy text: fixed eu, or a home naming an EU region (or unknown home written in the EU). */
function euResident(doc: Doc, row: Record<string, string | null | undefined>, source: string): boolean {
  if (doc.residency === 'global') return false;
  if ('jurisdiction' in doc.residency) return doc.residency.jurisdiction === 'eu';
  const home = row.home;
  const homeJurisdiction = typeof home === 'string' && home in doc.regions ? doc.regions[home] : doc.regions[source];
  return homeJurisdiction === 'eu';
}

describe('residency properties', () => {
  it('an EU-resident row is never sent or redacted to a US destination', () => {
    fc.assert(
      fc.property(caseArb, ({ doc, row, source, destination }) => {
        const policy = toPolicy(doc);
        const d = egressDecision(policy, { table: TABLE, row, sourceRegion: source, destination });
        if (euResident(doc, row, source) && doc.regions[destination] === 'us') expect(d.action).toBe('withhold');
        if (d.action !== 'withhold' && doc.residency !== 'global') {
          // Whatever travels, travels only inside the row's jurisdiction.
          expect(euResident(doc, row, source)).toBe(doc.regions[destination] === 'eu');
        }
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
