// `regionsync audit export|verify` as a real process against a real PostgreSQL of the
// stack: a ledger written through appendAuditInTx verifies; an entry's reason edited with
// SQL, a deleted entry, two swapped seqs and a removed newest entry are each named.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AUDIT_DDL, appendAuditInTx, parseJsonLines } from '@regionsync/gdpr';
import { ensureStack } from '@regionsync/stack';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DATABASE = 'int_coordinator_audit_cli';
const REGION = 'eu-west-1';
const ENTRIES = 8;

let dbUrl = '';
let client: pg.Client;

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--conditions=@regionsync/source', '--import', 'tsx', join(ROOT, 'apps/coordinator/src/cli.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function writeChain(): Promise<void> {
  await client.query('drop schema if exists regionsync cascade');
  await client.query(AUDIT_DDL);
  await client.query(`create table regionsync.settings (id int primary key default 1 check (id = 1), region text not null); insert into regionsync.settings (region) values ('${REGION}')`);
  // Two transactions, as the agent's audit queue and apply would write them.
  for (const batch of [[0, 1, 2, 3], [4, 5, 6, 7]]) {
    await client.query('begin');
    await appendAuditInTx(
      client,
      REGION,
      batch.map((i) => ({ at: 1_700_000_000_000 + i, kind: i % 2 === 0 ? ('withheld' as const) : ('redacted' as const), table: 'public.users', key: { id: `00000000-0000-0000-0000-00000000000${i}` }, destination: 'us-east-1', reason: i % 2 === 0 ? ('destination-outside-jurisdiction' as const) : ('pii-outside-jurisdiction' as const) })),
    );
    await client.query('commit');
  }
}

beforeAll(async () => {
  const env = await ensureStack();
  const admin = new pg.Client({ connectionString: env.regions['us-east-1']!.databaseUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${DATABASE} with (force)`);
  await admin.query(`create database ${DATABASE}`);
  await admin.end();
  const u = new URL(env.regions['us-east-1']!.databaseUrl);
  u.pathname = `/${DATABASE}`;
  dbUrl = u.toString();
  client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
});

describe('regionsync audit on a real database', () => {
  beforeEach(writeChain);

  it('exports the ledger as JSON and CSV and verifies it intact', () => {
    const json = cli('audit', 'export', '--db', dbUrl);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const entries = JSON.parse(json.stdout) as unknown[];
    expect(entries).toHaveLength(ENTRIES);
    expect(parseJsonLines(entries.map((e) => JSON.stringify(e)).join('\n')).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

    const csv = cli('audit', 'export', '--db', dbUrl, '--format', 'csv');
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trimEnd().split('\r\n');
    expect(lines[0]).toBe('region,seq,at,kind,table,key,destination,reason,prevHash,hash');
    expect(lines).toHaveLength(ENTRIES + 1);
    expect(lines[1]).toMatch(/^eu-west-1,1,1700000000000,withheld,public\.users,/);

    const ok = cli('audit', 'verify', '--db', dbUrl);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^audit ledger of eu-west-1 \\(127\\.0\\.0\\.1:\\d+/${DATABASE}\\): intact, 8 entries, head 8:[0-9a-f]{64}\\n$`));
    const head = /head (\d+:[0-9a-f]{64})/.exec(ok.stdout)![1]!;
    expect(cli('audit', 'verify', '--db', dbUrl, '--expected-head', head).code).toBe(0);
  });

  it('detects an entry whose reason was edited with SQL', async () => {
    await client.query(`update regionsync.audit_log set reason = 'pii-destination-denied' where seq = 4`);
    const r = cli('audit', 'verify', '--db', dbUrl);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/: BROKEN: edited at seq 4\n$/);
  });

  it('detects a deleted entry', async () => {
    await client.query('delete from regionsync.audit_log where seq = 5');
    const r = cli('audit', 'verify', '--db', dbUrl);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/: BROKEN: deleted at seq 5\n$/);
  });

  it('detects two swapped seqs', async () => {
    await client.query('begin');
    await client.query('update regionsync.audit_log set seq = -1 where seq = 2');
    await client.query('update regionsync.audit_log set seq = 2 where seq = 3');
    await client.query('update regionsync.audit_log set seq = 3 where seq = -1');
    await client.query('commit');
    const r = cli('audit', 'verify', '--db', dbUrl);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/: BROKEN: edited at seq 2\n$/);
  });

  it('detects a removed newest entry against the stored head, and against --expected-head when the head row is rewritten too', async () => {
    const before = /head (\d+:[0-9a-f]{64})/.exec(cli('audit', 'verify', '--db', dbUrl).stdout)![1]!;
    await client.query('delete from regionsync.audit_log where seq = 8');
    const r = cli('audit', 'verify', '--db', dbUrl);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/: BROKEN: deleted at seq 8 \(compared with regionsync\.audit_head\)\n$/);
    await client.query(`update regionsync.audit_head set seq = 7, hash = (select hash from regionsync.audit_log where seq = 7)`);
    expect(cli('audit', 'verify', '--db', dbUrl).code).toBe(0);
    const r2 = cli('audit', 'verify', '--db', dbUrl, '--expected-head', before);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/: BROKEN: deleted at seq 8 \(compared with --expected-head\)\n$/);
  });

  it('rejects bad arguments with exit 2 and a database without a ledger with exit 3', async () => {
    const bad = cli('audit', 'verify', '--db', dbUrl, '--expected-head', 'latest');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^regionsync: audit verify: --expected-head: expected <seq>:<sha256 hex>/);
    expect(cli('audit', 'export', '--db', dbUrl, '--format', 'xml').code).toBe(2);
    expect(cli('audits').code).toBe(2);
    await client.query('drop schema regionsync cascade');
    const none = cli('audit', 'verify', '--db', dbUrl);
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/no audit ledger \(tables regionsync\.audit_log and regionsync\.audit_head not found\)/);
  });
});
