import { describe, expect, it } from 'vitest';
import { auditKindFor, egressDecision, ingressDecision, misplacedDecision } from './decide.js';
import { parsePolicy } from './load-policy.js';
import { applyRedaction, hashPiiValue, isHashedPii } from './redaction.js';
import { allowedRegions, residencyOf } from './residency.js';

const policy = parsePolicy(`
version: 1
regions: { us-east-1: us, us-west-2: us, eu-west-1: eu, eu-central-1: eu, ap-southeast-1: apac }
defaults: { misplaced: relocate, moved: report }
hashKeyEnv: PII_KEY
tables:
  public.users:
    residency: { homeRegionColumn: home_region }
    subjectColumn: id
    pii: { email: { action: redact }, full_name: { action: hash } }
    exceptions: { destinations: { eu-central-1: { allowPii: false } } }
  public.products:
    residency: global
    pii: { owner_email: { action: redact } }
    exceptions:
      consentColumn: consent
      destinations: { ap-southeast-1: { allowPii: true } }
  public.ledger: { residency: { jurisdiction: eu } }
`);

const euUser = { id: 'u1', home_region: 'eu-west-1', email: 'a@example.eu', full_name: 'Ann Example' };
const product = { id: '7', name: 'Mug', owner_email: 'seller@example.eu', consent: 'f' };

describe('residencyOf', () => {
  it('follows the home-region column, a fixed jurisdiction or global', () => {
    expect(residencyOf(policy, 'public.users', euUser, 'us-east-1')).toEqual({ kind: 'jurisdiction', jurisdiction: 'eu', homeRegion: 'eu-west-1' });
    expect(residencyOf(policy, 'public.ledger', {}, 'us-east-1')).toEqual({ kind: 'jurisdiction', jurisdiction: 'eu' });
    expect(residencyOf(policy, 'public.products', product, 'eu-west-1')).toEqual({ kind: 'global' });
  });
  it('falls back to the source jurisdiction for an unknown, NULL or absent home', () => {
    for (const home of ['mars-1', null, undefined]) {
      const row = home === undefined ? { id: 'u1' } : { id: 'u1', home_region: home };
      expect(residencyOf(policy, 'public.users', row, 'us-west-2')).toEqual({ kind: 'jurisdiction', jurisdiction: 'us', unknownHome: true });
    }
  });
  it('keeps rows of unlisted tables in the source jurisdiction', () => {
    expect(residencyOf(policy, 'public.other', {}, 'eu-west-1')).toMatchObject({ jurisdiction: 'eu', unlistedTable: true });
  });
  it('throws for a source region outside the policy', () => {
    expect(() => residencyOf(policy, 'public.users', euUser, 'mars-1')).toThrow(/regions: expected an entry for source region mars-1/);
  });
  it('lists the regions that may hold a row', () => {
    expect(allowedRegions(policy, 'public.users', euUser, 'us-east-1')).toEqual(['eu-central-1', 'eu-west-1']);
    expect(allowedRegions(policy, 'public.products', product, 'us-east-1')).toHaveLength(5);
  });
});

describe('egressDecision', () => {
  const egress = (table: string, row: Record<string, string | null>, sourceRegion: string, destination: string) =>
    egressDecision(policy, { table, row, sourceRegion, destination });

  it('withholds a resident row from other jurisdictions', () => {
    expect(egress('public.users', euUser, 'eu-west-1', 'us-east-1')).toEqual({ action: 'withhold', reason: 'destination-outside-jurisdiction' });
    expect(egress('public.ledger', { id: '1' }, 'eu-west-1', 'ap-southeast-1').action).toBe('withhold');
  });
  it('sends a resident row with its PII inside its jurisdiction', () => {
    expect(egress('public.users', euUser, 'eu-central-1', 'eu-west-1')).toEqual({ action: 'send' });
  });
  it('redacts PII for a destination whose rule denies it, even in the jurisdiction', () => {
    expect(egress('public.users', euUser, 'eu-west-1', 'eu-central-1')).toEqual({
      action: 'redact',
      columns: ['email', 'full_name'],
      actions: { email: 'redact', full_name: 'hash' },
      reason: 'pii-destination-denied',
    });
  });
  it('forwards a misplaced EU row from a US region to the EU only', () => {
    expect(egress('public.users', euUser, 'us-east-1', 'eu-west-1')).toEqual({ action: 'send' });
    expect(egress('public.users', euUser, 'us-east-1', 'us-west-2').action).toBe('withhold');
  });
  it('sends global rows everywhere, redacting PII outside the source jurisdiction', () => {
    expect(egress('public.products', product, 'eu-west-1', 'eu-central-1')).toEqual({ action: 'send' });
    expect(egress('public.products', product, 'eu-west-1', 'us-east-1')).toMatchObject({ action: 'redact', columns: ['owner_email'], reason: 'pii-outside-jurisdiction' });
    // Destination exception, consent exception, and a NULL PII value.
    expect(egress('public.products', product, 'eu-west-1', 'ap-southeast-1')).toEqual({ action: 'send' });
    expect(egress('public.products', { ...product, consent: 't' }, 'eu-west-1', 'us-east-1')).toEqual({ action: 'send' });
    expect(egress('public.products', { ...product, owner_email: null }, 'eu-west-1', 'us-east-1')).toEqual({ action: 'send' });
  });
  it('fails closed on unknown tables and regions', () => {
    expect(egress('public.other', {}, 'eu-west-1', 'eu-central-1')).toEqual({ action: 'withhold', reason: 'table-not-in-policy' });
    expect(egress('public.products', product, 'mars-1', 'eu-central-1')).toEqual({ action: 'withhold', reason: 'source-not-in-policy' });
    expect(egress('public.products', product, 'eu-west-1', 'constructor')).toEqual({ action: 'withhold', reason: 'destination-not-in-policy' });
  });
  it('routes a key-only delete to the source jurisdiction, and by home when the key has it', () => {
    expect(egress('public.users', { id: 'u1' }, 'eu-west-1', 'eu-central-1')).toEqual({ action: 'send' });
    expect(egress('public.users', { id: 'u1' }, 'eu-west-1', 'us-east-1').action).toBe('withhold');
    expect(egress('public.users', { id: 'u1', home_region: 'eu-west-1' }, 'us-east-1', 'eu-central-1')).toEqual({ action: 'send' });
  });
});

describe('applyRedaction', () => {
  it('nulls redacted columns, hashes hashed ones, keeps the rest', () => {
    const out = applyRedaction(euUser, ['email', 'full_name'], { email: 'redact', full_name: 'hash' }, 'k'.repeat(32));
    expect(out.email).toBeNull();
    expect(out.full_name).toBe(hashPiiValue('Ann Example', 'k'.repeat(32)));
    expect(isHashedPii(out.full_name)).toBe(true);
    expect(out.id).toBe('u1');
    expect(euUser.email).toBe('a@example.eu');
  });
  it('refuses to hash without a key instead of leaking the value', () => {
    expect(() => applyRedaction(euUser, ['full_name'], 'hash')).toThrow(/hashKeyEnv: expected a hash key to hash PII column full_name/);
  });
});

describe('ingressDecision', () => {
  const ingress = (table: string, row: Record<string, string | null>, sourceRegion: string, localRegion: string) =>
    ingressDecision(policy, { table, row, sourceRegion, localRegion });

  it('refuses a row its residency keeps out of the local region', () => {
    expect(ingress('public.users', euUser, 'eu-west-1', 'us-east-1')).toEqual({ action: 'refuse', reason: 'local-outside-jurisdiction' });
  });
  it('refuses PII that should have been redacted, accepts it redacted', () => {
    expect(ingress('public.products', product, 'eu-west-1', 'us-east-1')).toEqual({ action: 'refuse', reason: 'unredacted-pii', columns: ['owner_email'] });
    expect(ingress('public.products', { ...product, owner_email: null }, 'eu-west-1', 'us-east-1')).toEqual({ action: 'accept' });
    const hashed = { ...euUser, email: null, full_name: hashPiiValue('Ann Example', 'key') };
    expect(ingress('public.users', hashed, 'eu-west-1', 'eu-central-1')).toEqual({ action: 'accept' });
    expect(ingress('public.users', { ...hashed, full_name: 'Ann Example' }, 'eu-west-1', 'eu-central-1')).toMatchObject({ columns: ['full_name'] });
  });
  it('refuses unknown tables and regions', () => {
    expect(ingress('public.other', {}, 'eu-west-1', 'eu-central-1').action).toBe('refuse');
    expect(ingress('public.products', product, 'eu-west-1', 'mars-1')).toMatchObject({ reason: 'local-not-in-policy' });
    expect(ingress('public.products', product, 'mars-1', 'eu-west-1')).toMatchObject({ reason: 'source-not-in-policy' });
  });
});

describe('misplacedDecision', () => {
  it('is ok for rows at home and for global rows', () => {
    expect(misplacedDecision(policy, { table: 'public.users', row: euUser, localRegion: 'eu-central-1' })).toEqual({ action: 'ok' });
    expect(misplacedDecision(policy, { table: 'public.products', row: product, localRegion: 'us-east-1' })).toEqual({ action: 'ok' });
  });
  it('relocates an EU row written in a US region (policy misplaced: relocate)', () => {
    expect(misplacedDecision(policy, { table: 'public.users', row: euUser, localRegion: 'us-east-1' })).toEqual({
      action: 'relocate',
      homeJurisdiction: 'eu',
      reason: 'written-outside-home',
      forwardTo: ['eu-central-1', 'eu-west-1'],
      strayIn: ['us-east-1'],
    });
    expect(misplacedDecision(policy, { table: 'public.ledger', row: { id: '1' }, localRegion: 'us-west-2' })).toMatchObject({ action: 'relocate', homeJurisdiction: 'eu' });
  });
  it('reports a row whose home moved to another jurisdiction (policy moved: report)', () => {
    const movedOut = { ...euUser, home_region: 'us-east-1' };
    expect(misplacedDecision(policy, { table: 'public.users', row: movedOut, oldRow: euUser, localRegion: 'eu-west-1' })).toEqual({
      action: 'report',
      homeJurisdiction: 'us',
      reason: 'home-moved',
      forwardTo: ['us-east-1', 'us-west-2'],
      strayIn: ['eu-central-1', 'eu-west-1'],
    });
    // Moved into the local jurisdiction: the stray copies are in the old one.
    expect(misplacedDecision(policy, { table: 'public.users', row: movedOut, oldRow: euUser, localRegion: 'us-west-2' })).toMatchObject({
      action: 'report',
      reason: 'home-moved',
      strayIn: ['eu-central-1', 'eu-west-1'],
    });
  });
  it('reports an unknown home value (nowhere to relocate to)', () => {
    expect(misplacedDecision(policy, { table: 'public.users', row: { ...euUser, home_region: 'mars-1' }, localRegion: 'us-east-1' })).toMatchObject({
      action: 'report',
      reason: 'unknown-home-region',
      homeJurisdiction: 'us',
    });
  });
});

describe('auditKindFor', () => {
  it('maps audited decisions to protocol audit kinds', () => {
    expect(auditKindFor({ action: 'send' })).toBeUndefined();
    expect(auditKindFor({ action: 'accept' })).toBeUndefined();
    expect(auditKindFor({ action: 'withhold', reason: 'table-not-in-policy' })).toBe('withheld');
    expect(auditKindFor({ action: 'refuse', reason: 'unredacted-pii' })).toBe('refused');
    expect(auditKindFor({ action: 'redact', columns: [], actions: {}, reason: 'pii-outside-jurisdiction' })).toBe('redacted');
    const base = { homeJurisdiction: 'eu', reason: 'home-moved', forwardTo: [], strayIn: [] } as const;
    expect(auditKindFor({ action: 'relocate', ...base })).toBe('relocated');
    expect(auditKindFor({ action: 'report', ...base })).toBe('withheld');
  });
});

describe('open and strict jurisdictions', () => {
  const mixed = parsePolicy(`
version: 1
regions: { us-east-1: us, us-west-2: us, eu-west-1: eu, eu-central-1: eu, ap-southeast-1: apac }
jurisdictions: { us: { residency: open }, eu: { residency: strict } }
tables:
  public.users:
    residency: { homeRegionColumn: home_region }
    pii: { email: { action: redact }, full_name: { action: redact } }
    exceptions:
      consentColumn: consent
      destinations: { ap-southeast-1: { allowPii: true }, us-west-2: { allowPii: false } }
  public.ledger: { residency: { jurisdiction: us } }
`);
  const usUser = { id: 'u9', home_region: 'us-east-1', email: 'c@example.us', full_name: 'Cy', consent: 'f' };
  const euRow = { ...usUser, home_region: 'eu-west-1' };
  const egress = (row: Record<string, string | null>, sourceRegion: string, destination: string) =>
    egressDecision(mixed, { table: 'public.users', row, sourceRegion, destination });
  const redacted = { action: 'redact', columns: ['email', 'full_name'], actions: { email: 'redact', full_name: 'redact' } };

  it('sends an open jurisdiction row everywhere, redacting its PII outside the jurisdiction', () => {
    expect(egress(usUser, 'us-east-1', 'eu-west-1')).toEqual({ ...redacted, reason: 'pii-outside-jurisdiction' });
    expect(egress(usUser, 'us-east-1', 'us-west-2')).toEqual({ ...redacted, reason: 'pii-destination-denied' });
    expect(egress({ ...usUser, consent: 't' }, 'us-east-1', 'eu-central-1')).toEqual({ action: 'send' });
    expect(egress(usUser, 'us-east-1', 'ap-southeast-1')).toEqual({ action: 'send' });
    expect(egress({ ...usUser, email: null, full_name: null }, 'us-east-1', 'eu-west-1')).toEqual({ action: 'send' });
    expect(allowedRegions(mixed, 'public.users', usUser, 'eu-west-1')).toHaveLength(5);
    expect(egressDecision(mixed, { table: 'public.ledger', row: { id: '1' }, sourceRegion: 'us-east-1', destination: 'eu-west-1' })).toEqual({ action: 'send' });
  });
  it('keeps a strict jurisdiction row inside it, also when unlisted jurisdictions default to strict', () => {
    expect(egress(euRow, 'eu-west-1', 'us-east-1')).toEqual({ action: 'withhold', reason: 'destination-outside-jurisdiction' });
    expect(egress({ ...euRow, consent: 't' }, 'eu-west-1', 'ap-southeast-1').action).toBe('withhold');
    expect(egress({ ...usUser, home_region: 'ap-southeast-1' }, 'ap-southeast-1', 'us-east-1').action).toBe('withhold');
    expect(allowedRegions(mixed, 'public.users', euRow, 'us-east-1')).toEqual(['eu-central-1', 'eu-west-1']);
  });
  it('routes key-only deletes and unknown homes by the source jurisdiction and its mode', () => {
    expect(egress({ id: 'u9' }, 'us-east-1', 'eu-west-1')).toEqual({ action: 'send' });
    expect(egress({ id: 'u9' }, 'eu-west-1', 'us-east-1').action).toBe('withhold');
    expect(egress({ ...usUser, home_region: 'mars-1' }, 'us-east-1', 'eu-west-1')).toMatchObject({ action: 'redact' });
  });
  it('accepts a redacted open row abroad and refuses it unredacted', () => {
    const ingress = (row: Record<string, string | null>, localRegion: string) => ingressDecision(mixed, { table: 'public.users', row, sourceRegion: 'us-east-1', localRegion });
    expect(ingress({ ...usUser, email: null, full_name: null }, 'eu-west-1')).toEqual({ action: 'accept' });
    expect(ingress(usUser, 'eu-west-1')).toEqual({ action: 'refuse', reason: 'unredacted-pii', columns: ['email', 'full_name'] });
    expect(ingress(euRow, 'us-east-1')).toEqual({ action: 'refuse', reason: 'local-outside-jurisdiction' });
  });
  it('treats an open row written abroad as in place, and a move between modes by where copies may be', () => {
    expect(misplacedDecision(mixed, { table: 'public.users', row: usUser, localRegion: 'eu-west-1' })).toEqual({ action: 'ok' });
    // Moved from open US to strict EU: every non-EU region may hold a copy.
    expect(misplacedDecision(mixed, { table: 'public.users', row: euRow, oldRow: usUser, localRegion: 'eu-west-1' })).toEqual({
      action: 'report',
      homeJurisdiction: 'eu',
      reason: 'home-moved',
      forwardTo: ['eu-central-1'],
      strayIn: ['ap-southeast-1', 'us-east-1', 'us-west-2'],
    });
    // Moved from strict EU to open US: the row may now live anywhere.
    expect(misplacedDecision(mixed, { table: 'public.users', row: usUser, oldRow: euRow, localRegion: 'eu-west-1' })).toEqual({ action: 'ok' });
  });
});
