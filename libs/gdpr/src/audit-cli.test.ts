import { describe, expect, it } from 'vitest';
import { errorCode } from '@regionsync/protocol';
import { appendEntry, type AuditEntry } from './audit-chain.js';
import { parseAuditArgs, runAuditCli, toJsonArray, verifyLedger } from './audit-cli.js';

const DB = 'postgres://rs:secret-pw@127.0.0.1:5433/ledger';
const HASH = 'a'.repeat(64);

function messageOf(args: string[]): string {
  try {
    parseAuditArgs(args);
  } catch (e) {
    expect(errorCode(e)).toBe('RS_CONFIG_INVALID');
    return (e as Error).message;
  }
  throw new Error('arguments were accepted');
}

function ledger(n: number): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (let i = 0; i < n; i++) {
    out.push(appendEntry(out.at(-1), { region: 'eu-west-1', at: i, kind: 'withheld', table: 'public.users', key: { id: `u${i}` }, destination: 'us-east-1', reason: 'destination-outside-jurisdiction' }));
  }
  return out;
}

describe('parseAuditArgs', () => {
  it('parses export and verify with both option spellings', () => {
    expect(parseAuditArgs(['export', '--db', DB])).toEqual({ command: 'export', db: DB, format: 'json' });
    expect(parseAuditArgs(['export', `--db=${DB}`, '--format=csv', '--region', 'eu-west-1'])).toEqual({ command: 'export', db: DB, format: 'csv', region: 'eu-west-1' });
    expect(parseAuditArgs(['verify', '--db', DB, '--expected-head', `12:${HASH}`])).toEqual({ command: 'verify', db: DB, expectedHead: { seq: 12, hash: HASH } });
    expect(parseAuditArgs([])).toEqual({ command: 'help' });
    expect(parseAuditArgs(['verify', '--help'])).toEqual({ command: 'help' });
  });
  const cases: [string, string[], string][] = [
    ['unknown command', ['purge'], 'audit: expected a command export|verify'],
    ['missing db', ['verify'], 'audit verify: --db: required'],
    ['db not a URL', ['export', '--db', 'localhost'], 'audit export: --db: expected a postgres:// or postgresql:// URL'],
    ['db other scheme', ['export', '--db', 'mysql://h/db'], '--db: expected a postgres:// or postgresql:// URL'],
    ['bad format', ['export', '--db', DB, '--format', 'xml'], 'audit export: --format: expected one of json|csv'],
    ['format on verify', ['verify', '--db', DB, '--format', 'csv'], 'audit verify: unknown option "--format" (expected one of --db, --expected-head, --region)'],
    ['missing value', ['export', '--db'], 'audit export: --db: expected a value'],
    ['value is an option', ['export', '--db', '--format', 'csv'], 'audit export: --db: expected a value'],
    ['bad head', ['verify', '--db', DB, '--expected-head', '12'], 'audit verify: --expected-head: expected <seq>:<sha256 hex>'],
    ['uppercase head hash', ['verify', '--db', DB, '--expected-head', `1:${'A'.repeat(64)}`], '--expected-head: expected <seq>:<sha256 hex>'],
    ['bad region', ['verify', '--db', DB, '--region', 'EU'], '--region: expected a region name'],
    ['twice', ['verify', '--db', DB, '--db', DB], 'audit verify: --db given twice'],
    ['positional', ['verify', DB], 'audit verify: unexpected argument at position 1'],
  ];
  it.each(cases)('%s: names the argument and the expectation', (_name, args, expected) => {
    const message = messageOf(args);
    expect(message).toContain(expected);
    expect(message).not.toContain('secret-pw');
  });
});

describe('verifyLedger', () => {
  const c = ledger(5);
  const head = (e: AuditEntry) => ({ seq: e.seq, hash: e.hash });
  it('is ok for an intact chain matching its head', () => {
    expect(verifyLedger(c, head(c[4]!))).toEqual({ ok: true, count: 5, head: head(c[4]!) });
    expect(verifyLedger([], undefined)).toEqual({ ok: true, count: 0 });
    expect(verifyLedger(c, head(c[4]!), head(c[2]!))).toMatchObject({ ok: true });
  });
  it('names the seq and problem for an edit, a deletion and a swap', () => {
    const edited = c.map((e) => (e.seq === 3 ? { ...e, reason: 'pii-destination-denied' } : e));
    expect(verifyLedger(edited, head(c[4]!))).toEqual({ ok: false, atSeq: 3, problem: 'edited' });
    expect(verifyLedger(c.filter((e) => e.seq !== 2), head(c[4]!))).toEqual({ ok: false, atSeq: 2, problem: 'deleted' });
    expect(verifyLedger([c[0]!, c[2]!, c[1]!, c[3]!, c[4]!], head(c[4]!))).toEqual({ ok: false, atSeq: 2, problem: 'reordered' });
  });
  it('catches a removed newest entry against the stored or the expected head', () => {
    expect(verifyLedger(c.slice(0, 4), head(c[4]!))).toEqual({ ok: false, atSeq: 5, problem: 'deleted', against: 'stored-head' });
    expect(verifyLedger(c.slice(0, 4), head(c[3]!), head(c[4]!))).toEqual({ ok: false, atSeq: 5, problem: 'deleted', against: 'expected-head' });
    expect(verifyLedger(c, head(c[3]!))).toEqual({ ok: false, atSeq: 5, problem: 'not-in-head', against: 'stored-head' });
  });
});

describe('exports and the CLI entry', () => {
  it('prints a JSON array that parses back to the entries', () => {
    const c = ledger(3);
    expect(JSON.parse(toJsonArray(c))).toEqual(c);
    expect(toJsonArray([])).toBe('[]\n');
  });
  it('exits 2 with the message and usage for bad arguments, 0 with usage for help', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
    expect(await runAuditCli(['export', '--format', 'xml', '--db', DB], io)).toBe(2);
    expect(err.join('')).toMatch(/^regionsync: audit export: --format: expected one of json\|csv\n\nusage:/);
    expect(await runAuditCli(['--help'], io)).toBe(0);
    expect(out.join('')).toContain('regionsync audit verify --db');
  });
  it('exits 3 naming host, port and database (not the password) when the database is unreachable', async () => {
    const err: string[] = [];
    const code = await runAuditCli(['verify', '--db', 'postgres://rs:secret-pw@127.0.0.1:1/nowhere'], { out: () => undefined, err: (t) => err.push(t) });
    expect(code).toBe(3);
    expect(err.join('')).toMatch(/cannot connect to 127\.0\.0\.1:1\/nowhere \(ECONNREFUSED\)/);
    expect(err.join('')).not.toContain('secret-pw');
  });
});
