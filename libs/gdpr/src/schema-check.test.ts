import { describe, expect, it } from 'vitest';
import { DEMO_SCHEMA, demoPolicyYaml, loadDemoPolicy } from './demo-policy.js';
import { egressDecision, misplacedDecision } from './decide.js';
import { hashKeyFromEnv, parsePolicy } from './load-policy.js';
import { checkPolicyAgainstSchema } from './schema-check.js';

describe('checkPolicyAgainstSchema', () => {
  const policy = parsePolicy(`
version: 1
regions: { us-east-1: us, eu-west-1: eu }
tables:
  public.users:
    residency: { homeRegionColumn: home_region }
    subjectColumn: id
    pii: { email: { action: redact } }
    exceptions: { consentColumn: consent }
  public.gone: { residency: global }
`);
  it('names every missing table and column', () => {
    expect(checkPolicyAgainstSchema(policy, { 'public.users': ['uid', 'region'], 'public.extra': ['id'] })).toEqual([
      'tables.public.users.residency.homeRegionColumn: column home_region not found in public.users',
      'tables.public.users.subjectColumn: column id not found in public.users',
      'tables.public.users.pii.email: column email not found in public.users',
      'tables.public.users.exceptions.consentColumn: column consent not found in public.users',
      'tables.public.gone: table not found in the database',
      'tables.public.extra: replicated table is not in the policy (its changes would be withheld from every region)',
    ]);
  });
  it('is empty for a matching schema', () => {
    expect(checkPolicyAgainstSchema(policy, { 'public.users': ['id', 'home_region', 'email', 'consent'], 'public.gone': ['id'] })).toEqual([]);
  });
});

describe('demo policy', () => {
  const demo = loadDemoPolicy();
  it('matches the demo schema and needs no hash key', () => {
    expect(checkPolicyAgainstSchema(demo, DEMO_SCHEMA)).toEqual([]);
    expect(hashKeyFromEnv(demo, {})).toBeUndefined();
    expect(parsePolicy(demoPolicyYaml())).toEqual(demo);
  });
  it('declares the documented regions, residency, PII and erasure subjects', () => {
    expect(demo.regions).toEqual({ 'us-east-1': 'us', 'eu-west-1': 'eu', 'eu-central-1': 'eu', 'ap-southeast-1': 'apac' });
    for (const t of ['public.users', 'public.orders', 'public.documents']) {
      expect(demo.tables[t]?.residency).toEqual({ kind: 'home-region', column: 'home_region' });
    }
    expect(demo.tables['public.products']?.residency).toEqual({ kind: 'global' });
    expect(demo.tables['public.users']?.pii).toEqual({ email: 'redact', full_name: 'redact' });
    expect(demo.tables['public.users']?.subjectColumn).toBe('id');
    expect(demo.tables['public.orders']?.subjectColumn).toBe('user_id');
    expect(demo.tables['public.documents']?.subjectColumn).toBe('user_id');
  });
  it('keeps an EU user in the EU and reports one written in the US', () => {
    const user = { id: 'u1', home_region: 'eu-central-1', email: 'a@example.eu', full_name: 'A', updated_at: '2024-01-01 00:00:00+00' };
    expect(egressDecision(demo, { table: 'public.users', row: user, sourceRegion: 'eu-west-1', destination: 'eu-central-1' })).toEqual({ action: 'send' });
    expect(egressDecision(demo, { table: 'public.users', row: user, sourceRegion: 'eu-west-1', destination: 'us-east-1' }).action).toBe('withhold');
    expect(egressDecision(demo, { table: 'public.users', row: user, sourceRegion: 'eu-west-1', destination: 'ap-southeast-1' }).action).toBe('withhold');
    expect(misplacedDecision(demo, { table: 'public.users', row: user, localRegion: 'us-east-1' })).toMatchObject({ action: 'report', reason: 'written-outside-home' });
  });
  it('lets a US user travel everywhere with email and full_name redacted outside the US', () => {
    expect(demo.jurisdictions).toEqual({ us: { residency: 'open' }, eu: { residency: 'strict' }, apac: { residency: 'strict' } });
    const user = { id: 'u2', home_region: 'us-east-1', email: 'b@example.us', full_name: 'B', updated_at: '2024-01-01 00:00:00+00' };
    for (const destination of ['eu-west-1', 'eu-central-1', 'ap-southeast-1']) {
      expect(egressDecision(demo, { table: 'public.users', row: user, sourceRegion: 'us-east-1', destination })).toEqual({
        action: 'redact',
        columns: ['email', 'full_name'],
        actions: { email: 'redact', full_name: 'redact' },
        reason: 'pii-outside-jurisdiction',
      });
    }
    const order = { id: 'o1', user_id: 'u2', home_region: 'us-east-1', amount_cents: '5', status: 'placed', updated_at: null };
    expect(egressDecision(demo, { table: 'public.orders', row: order, sourceRegion: 'us-east-1', destination: 'eu-west-1' })).toEqual({ action: 'send' });
    expect(misplacedDecision(demo, { table: 'public.users', row: user, localRegion: 'eu-west-1' })).toEqual({ action: 'ok' });
  });
});
