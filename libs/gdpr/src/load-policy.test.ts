import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorCode, isRegionsyncError } from '@regionsync/protocol';
import { hashKeyFromEnv, loadPolicyFile, parsePolicy, policyHash } from './load-policy.js';

const VALID = `
version: 1
regions: { us-east-1: us, eu-west-1: eu, eu-central-1: eu }
defaults: { misplaced: relocate }
tables:
  public.users:
    residency: { homeRegionColumn: home_region }
    subjectColumn: id
    pii:
      email: { action: redact }
      full_name: { action: hash }
    exceptions:
      consentColumn: cross_border_consent
      destinations: { us-east-1: { allowPii: false } }
  public.products: { residency: global }
  public.ledger: { residency: { jurisdiction: eu }, moved: report }
hashKeyEnv: REGIONSYNC_PII_HASH_KEY
`;

function messageOf(yaml: string): string {
  try {
    parsePolicy(yaml, 'test.yaml');
  } catch (e) {
    expect(errorCode(e)).toBe('RS_GDPR_POLICY_INVALID');
    return (e as Error).message;
  }
  throw new Error('policy was accepted');
}

const base = (tables: string, extra = ''): string =>
  `version: 1\nregions: { us-east-1: us, eu-west-1: eu }\n${extra}tables:\n${tables}`;

describe('parsePolicy', () => {
  it('parses and normalises the documented example', () => {
    const p = parsePolicy(VALID);
    expect(p.regions['eu-central-1']).toBe('eu');
    const users = p.tables['public.users'];
    expect(users?.residency).toEqual({ kind: 'home-region', column: 'home_region' });
    expect(users?.pii).toEqual({ email: 'redact', full_name: 'hash' });
    expect(users?.consentColumn).toBe('cross_border_consent');
    expect(users?.destinations['us-east-1']).toEqual({ allowPii: false });
    expect(users?.misplaced).toBe('relocate');
    expect(users?.moved).toBe('report');
    expect(p.tables['public.products']?.residency).toEqual({ kind: 'global' });
    expect(p.tables['public.ledger']?.residency).toEqual({ kind: 'fixed', jurisdiction: 'eu' });
    expect(Object.isFrozen(p.tables)).toBe(true);
  });

  it('does not resolve prototype members as tables or regions', () => {
    const p = parsePolicy(VALID);
    expect(p.tables['constructor']).toBeUndefined();
    expect(p.regions['toString']).toBeUndefined();
  });

  // Each bad document and the path + expectation its error must name.
  const cases: [string, string, string][] = [
    ['bad pii action', base('  public.users:\n    residency: global\n    pii: { email: { action: delete } }'), 'tables.public.users.pii.email.action: expected one of redact|hash'],
    ['wrong version', `version: 2\nregions: { us-east-1: us }\ntables: {}`, 'version: expected 1'],
    ['missing version', `regions: { us-east-1: us }\ntables: {}`, 'version: required field missing'],
    ['bad region name', `version: 1\nregions: { US_East: us }\ntables: {}`, 'regions.US_East: expected region name'],
    ['bad jurisdiction', `version: 1\nregions: { us-east-1: US }\ntables: {}`, 'regions.us-east-1: expected jurisdiction as a lowercase word'],
    ['no regions', `version: 1\nregions: {}\ntables: {}`, 'regions: expected at least one region'],
    ['bad residency word', base('  public.users: { residency: globl }'), 'tables.public.users.residency: expected global, { homeRegionColumn: <column> } or { jurisdiction: <name> }'],
    ['missing residency', base('  public.users: { subjectColumn: id }'), 'tables.public.users.residency: expected global'],
    ['residency extra key', base('  public.users: { residency: { homeRegionColumn: h, also: 1 } }'), 'tables.public.users.residency: unknown field also'],
    ['unused jurisdiction', base('  public.users: { residency: { jurisdiction: apac } }'), 'tables.public.users.residency.jurisdiction: expected a jurisdiction used by a region in regions (eu|us)'],
    ['unknown jurisdiction mode', base('  public.p: { residency: global }', 'jurisdictions: { eu: { residency: loose } }\n'), 'jurisdictions.eu.residency: expected one of strict|open'],
    ['jurisdiction without region', base('  public.p: { residency: global }', 'jurisdictions: { apac: { residency: open } }\n'), 'jurisdictions.apac: expected a jurisdiction used by a region in regions (eu|us)'],
    ['jurisdiction extra key', base('  public.p: { residency: global }', 'jurisdictions: { us: { residency: open, pii: allow } }\n'), 'jurisdictions.us: unknown field pii'],
    ['table name', base('  users: { residency: global }'), 'tables.users: expected table name as schema.table'],
    ['unknown table key', base('  public.users: { residency: global, pi: {} }'), 'tables.public.users: unknown field pi'],
    ['unknown top key', `version: 1\nregions: { us-east-1: us }\ntables: {}\nregion: x`, '(root): unknown field region'],
    ['bad default', base('  public.p: { residency: global }', 'defaults: { misplaced: move }\n'), 'defaults.misplaced: expected one of report|relocate'],
    ['hash without key env', base('  public.users:\n    residency: global\n    pii: { email: { action: hash } }'), 'hashKeyEnv: expected environment variable name (required because tables.public.users.pii.email.action is hash)'],
    ['bad env name', base('  public.p: { residency: global }', 'hashKeyEnv: my-key\n'), 'hashKeyEnv: expected environment variable name'],
    ['home column is pii', base('  public.users:\n    residency: { homeRegionColumn: home_region }\n    pii: { home_region: { action: redact } }'), 'tables.public.users.pii.home_region: expected a column other than the home-region column'],
    ['subject is pii', base('  public.users:\n    residency: global\n    subjectColumn: email\n    pii: { email: { action: redact } }'), 'tables.public.users.subjectColumn: expected a column that is not listed under pii'],
    ['consent is pii', base('  public.users:\n    residency: global\n    pii: { email: { action: redact } }\n    exceptions: { consentColumn: email }'), 'tables.public.users.exceptions.consentColumn: expected a column that is not listed under pii'],
    ['exceptions without pii', base('  public.users:\n    residency: global\n    exceptions: { consentColumn: c }'), 'tables.public.users.exceptions: expected exceptions only on a table that lists pii columns'],
    ['unknown destination', base('  public.users:\n    residency: global\n    pii: { email: { action: redact } }\n    exceptions: { destinations: { ap-south-1: { allowPii: true } } }'), 'tables.public.users.exceptions.destinations.ap-south-1: expected a region listed in regions'],
    ['allowPii not boolean', base('  public.users:\n    residency: global\n    pii: { email: { action: redact } }\n    exceptions: { destinations: { us-east-1: { allowPii: "yes" } } }'), 'tables.public.users.exceptions.destinations.us-east-1.allowPii: expected boolean, received string'],
    ['pii not a map', base('  public.users: { residency: global, pii: [email] }'), 'tables.public.users.pii: expected object, received array'],
    ['empty document', '', '(root): expected object, received null'],
    ['syntax error', 'version: 1\n  bad: [', 'YAML syntax error'],
    ['duplicate key', 'version: 1\nversion: 1\n', '2:1: YAML syntax error (DUPLICATE_KEY)'],
  ];
  it.each(cases)('%s: names path and expectation', (_name, yaml, expected) => {
    const message = messageOf(yaml);
    expect(message.startsWith('test.yaml: ')).toBe(true);
    expect(message).toContain(expected);
  });

  it('defaults every jurisdiction of a region to strict', () => {
    expect(parsePolicy(VALID).jurisdictions).toEqual({ eu: { residency: 'strict' }, us: { residency: 'strict' } });
    const open = parsePolicy(VALID.replace('tables:', 'jurisdictions: { us: { residency: open } }\ntables:'));
    expect(open.jurisdictions).toEqual({ eu: { residency: 'strict' }, us: { residency: 'open' } });
  });

  it('lists every problem in details', () => {
    try {
      parsePolicy(`version: 3\nregions: { X: us }\ntables: { t: 1 }`);
    } catch (e) {
      expect(isRegionsyncError(e)).toBe(true);
      const problems = (e as { details?: { problems?: string[] } }).details?.problems ?? [];
      expect(problems.length).toBeGreaterThanOrEqual(3);
      return;
    }
    throw new Error('accepted');
  });

  it('never echoes rejected values', () => {
    const secret = 'Alice.Secret@Example';
    const docs = [
      base(`  public.users: { residency: { jurisdiction: "${secret}" } }`),
      `version: 1\nregions: { us-east-1: "${secret}" }\ntables: {}`,
      base(`  public.users: { residency: "${secret}" }`),
      base(`  public.users: { residency: global, pii: { email: { action: "${secret}" } } }`),
    ];
    for (const doc of docs) expect(messageOf(doc)).not.toContain(secret);
  });
});

describe('policyHash', () => {
  it('is stable across key order, comments and spelled-out defaults', () => {
    const a = parsePolicy(VALID);
    const reordered = `
hashKeyEnv: REGIONSYNC_PII_HASH_KEY   # comment
tables:
  public.ledger: { moved: report, residency: { jurisdiction: eu }, misplaced: relocate }
  public.products: { residency: global }
  public.users:
    exceptions:
      destinations: { us-east-1: { allowPii: false } }
      consentColumn: cross_border_consent
    pii:
      full_name: { action: hash }
      email: { action: redact }
    subjectColumn: id
    residency: { homeRegionColumn: home_region }
defaults: { moved: report, misplaced: relocate }
regions: { eu-central-1: eu, eu-west-1: eu, us-east-1: us }
version: 1
`;
    expect(policyHash(parsePolicy(reordered))).toBe(policyHash(a));
    expect(policyHash(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes when a rule changes', () => {
    const a = policyHash(parsePolicy(VALID));
    expect(policyHash(parsePolicy(VALID.replace('allowPii: false', 'allowPii: true')))).not.toBe(a);
    expect(policyHash(parsePolicy(VALID.replace('eu-central-1: eu', 'eu-central-1: us')))).not.toBe(a);
    expect(policyHash(parsePolicy(VALID.replace('tables:', 'jurisdictions: { us: { residency: open } }\ntables:')))).not.toBe(a);
  });

  it('treats a spelled-out strict jurisdiction like an absent one', () => {
    const a = policyHash(parsePolicy(VALID));
    expect(policyHash(parsePolicy(VALID.replace('tables:', 'jurisdictions: { eu: { residency: strict } }\ntables:')))).toBe(a);
  });
});

describe('hashKeyFromEnv', () => {
  const p = parsePolicy(VALID);
  it('reads the named variable', () => {
    const key = hashKeyFromEnv(p, { REGIONSYNC_PII_HASH_KEY: 'k'.repeat(32) });
    expect(key?.length).toBe(32);
  });
  it('names the variable, not its content, when missing or short', () => {
    expect(() => hashKeyFromEnv(p, {})).toThrow(/hashKeyEnv: expected environment variable REGIONSYNC_PII_HASH_KEY/);
    try {
      hashKeyFromEnv(p, { REGIONSYNC_PII_HASH_KEY: 'tiny-secret' });
    } catch (e) {
      expect((e as Error).message).not.toContain('tiny-secret');
    }
  });
  it('is not needed without hashed columns', () => {
    expect(hashKeyFromEnv(parsePolicy(base('  public.p: { residency: global }')), {})).toBeUndefined();
  });
});

describe('loadPolicyFile', () => {
  it('loads a file and names it in errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gdpr-'));
    const good = join(dir, 'good.yaml');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(good, VALID);
    writeFileSync(bad, 'version: 1\n');
    expect(loadPolicyFile(good).tables['public.users']).toBeDefined();
    expect(() => loadPolicyFile(bad)).toThrow(`${bad}: regions: required field missing`);
    try {
      loadPolicyFile(join(dir, 'missing.yaml'));
    } catch (e) {
      expect(errorCode(e)).toBe('RS_CONFIG_FILE');
      expect((e as Error).message).toContain('ENOENT');
    }
  });
});
