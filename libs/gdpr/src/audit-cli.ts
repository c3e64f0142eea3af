// `regionsync audit export|verify`: argument parsing, the ledger read from a region's
// database and the report. Parsing and formatting are pure; `runAuditCli` does the I/O.
// Nothing printed quotes a row value or the database password: the ledger holds keys and
// fixed-vocabulary reasons only, and the URL is shown as host:port/database.
import pg from 'pg';
import { RegionsyncError, errorCode, regionSchema } from '@regionsync/protocol';
import { verifyChain, type AuditEntry, type ChainPoint, type VerifyResult } from './audit-chain.js';
import { toCsv } from './audit-export.js';
import { readAudit } from './audit-store.js';
import { canonicalJson } from './canonical-json.js';

export const AUDIT_EXPORT_FORMATS = ['json', 'csv'] as const;
export type AuditExportFormat = (typeof AUDIT_EXPORT_FORMATS)[number];

export type AuditCommand =
  | { command: 'help' }
  | { command: 'export'; db: string; format: AuditExportFormat; region?: string }
  | { command: 'verify'; db: string; expectedHead?: ChainPoint; region?: string };

export const AUDIT_USAGE = `usage:
  regionsync audit export --db <postgres-url> [--format json|csv] [--region <name>]
      prints the region's audit ledger (json: an array, one canonical entry per line;
      csv: RFC 4180 with a header row)
  regionsync audit verify --db <postgres-url> [--expected-head <seq>:<sha256-hex>] [--region <name>]
      checks the hash chain; exit 0 when intact, 1 naming the seq and the problem
      (edited, deleted, reordered, bad-genesis); --expected-head is the head the region
      last published, without it the database's own head row is the reference
  --region defaults to the region recorded by the agent (regionsync.settings).
exit codes: 0 ok, 1 ledger broken, 2 bad arguments, 3 database unreachable or not a regionsync ledger`;

const HEAD_PATTERN = /^(\d{1,15}):([0-9a-f]{64})$/;
const OPTIONS: Record<'export' | 'verify', readonly string[]> = {
  export: ['--db', '--format', '--region'],
  verify: ['--db', '--expected-head', '--region'],
};

function usageError(message: string): never {
  throw new RegionsyncError('RS_CONFIG_INVALID', message);
}

/** Parses `audit <export|verify> [options]` (without the leading `audit`). Throws RS_CONFIG_INVALID naming the argument. */
export function parseAuditArgs(args: readonly string[]): AuditCommand {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') return { command: 'help' };
  if (sub !== 'export' && sub !== 'verify') usageError(`audit: expected a command export|verify, got ${JSON.stringify(sub.slice(0, 40))}`);
  const allowed = OPTIONS[sub];
  const values = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? '';
    if (arg === '--help' || arg === '-h') return { command: 'help' };
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!name.startsWith('--')) usageError(`audit ${sub}: unexpected argument at position ${i + 1} (options are ${allowed.join(', ')})`);
    if (!allowed.includes(name)) usageError(`audit ${sub}: unknown option ${JSON.stringify(name.slice(0, 40))} (expected one of ${allowed.join(', ')})`);
    if (values.has(name)) usageError(`audit ${sub}: ${name} given twice`);
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      value = rest[i + 1];
      i++;
    }
    if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) usageError(`audit ${sub}: ${name}: expected a value`);
    values.set(name, value);
  }
  const db = values.get('--db');
  if (db === undefined) usageError(`audit ${sub}: --db: required (postgres://user:password@host:port/database of the region)`);
  let url: URL;
  try {
    url = new URL(db);
  } catch {
    usageError(`audit ${sub}: --db: expected a postgres:// or postgresql:// URL`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') usageError(`audit ${sub}: --db: expected a postgres:// or postgresql:// URL`);
  const regionArg = values.get('--region');
  if (regionArg !== undefined && !regionSchema.safeParse(regionArg).success) usageError(`audit ${sub}: --region: expected a region name matching ^[a-z][a-z0-9-]{1,62}$`);
  const region = regionArg === undefined ? {} : { region: regionArg };
  if (sub === 'export') {
    const format = values.get('--format') ?? 'json';
    if (!(AUDIT_EXPORT_FORMATS as readonly string[]).includes(format)) usageError(`audit export: --format: expected one of ${AUDIT_EXPORT_FORMATS.join('|')}`);
    return { command: 'export', db, format: format as AuditExportFormat, ...region };
  }
  const head = values.get('--expected-head');
  if (head === undefined) return { command: 'verify', db, ...region };
  const m = HEAD_PATTERN.exec(head);
  if (m === null) usageError('audit verify: --expected-head: expected <seq>:<sha256 hex>, e.g. 42:3fa1… (64 lowercase hex digits)');
  return { command: 'verify', db, expectedHead: { seq: Number(m[1]), hash: m[2] ?? '' }, ...region };
}

/** `host:port/database` of a connection URL, for messages (never the credentials). */
export function describeDb(db: string): string {
  try {
    const u = new URL(db);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return 'the database';
  }
}

/** JSON export: an array with one canonical entry per line (parseable as a whole or line by line after trimming commas). */
export function toJsonArray(entries: readonly AuditEntry[]): string {
  if (entries.length === 0) return '[]\n';
  return `[\n${entries.map((e) => canonicalJson({ ...e, key: { ...e.key } })).join(',\n')}\n]\n`;
}

export type LedgerVerdict = { ok: true; count: number; head?: ChainPoint } | { ok: false; atSeq: number; problem: string; against?: 'expected-head' | 'stored-head' };

/**
 * Verifies a chain, then its newest entry against the reference head: the one given by
 * the operator, else the database's head row (which catches a naive removal of the newest
 * entries; an attacker who also rewrites the head row is only caught by --expected-head).
 */
export function verifyLedger(entries: readonly AuditEntry[], storedHead: ChainPoint | undefined, expectedHead?: ChainPoint): LedgerVerdict {
  const chain: VerifyResult = verifyChain(entries);
  if (!chain.ok) return chain;
  const ref = expectedHead ?? storedHead;
  if (ref !== undefined && ref.seq > 0) {
    const r = verifyChain(entries, { expectedHead: ref });
    if (!r.ok) return { ...r, against: expectedHead ? 'expected-head' : 'stored-head' };
    const newest = entries.at(-1);
    if (newest !== undefined && newest.seq > ref.seq && expectedHead === undefined) {
      // Entries after the stored head: the head row was not advanced with them.
      return { ok: false, atSeq: ref.seq + 1, problem: 'not-in-head', against: 'stored-head' };
    }
  }
  const last = entries.at(-1);
  return { ok: true, count: entries.length, ...(last ? { head: { seq: last.seq, hash: last.hash } } : {}) };
}

export interface Ledger {
  region: string;
  entries: AuditEntry[];
  storedHead?: ChainPoint;
}

/** Reads a region's ledger and head row. Throws RS_CONFIG_INVALID when there is no ledger or region. */
export async function readLedger(db: string, regionArg?: string): Promise<Ledger> {
  const client = new pg.Client({ connectionString: db, connectionTimeoutMillis: 10_000 });
  // A session the server ends surfaces through the pending query; unheard, pg's 'error' event would end the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (cause) {
    const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : 'unknown';
    throw new RegionsyncError('RS_CONFIG_PREREQUISITE', `cannot connect to ${describeDb(db)} (${code})`, { cause });
  }
  try {
    const tables = await client.query<{ t: string | null; h: string | null; s: string | null }>(
      `select to_regclass('regionsync.audit_log')::text as t, to_regclass('regionsync.audit_head')::text as h, to_regclass('regionsync.settings')::text as s`,
    );
    const found = tables.rows[0];
    if (!found?.t || !found.h) throw new RegionsyncError('RS_CONFIG_PREREQUISITE', `${describeDb(db)}: no audit ledger (tables regionsync.audit_log and regionsync.audit_head not found)`);
    let region = regionArg;
    if (region === undefined && found.s) {
      const r = await client.query<{ region: string }>('select region from regionsync.settings where id = 1');
      region = r.rows[0]?.region;
    }
    if (region === undefined) usageError(`--region: required (${describeDb(db)} records no region in regionsync.settings)`);
    // Repeatable read: the chain and its head row from one snapshot.
    await client.query('begin isolation level repeatable read read only');
    const entries = await readAudit(client, region);
    const head = await client.query<{ seq: string; hash: string | null }>('select seq, hash from regionsync.audit_head where id = 1');
    await client.query('commit');
    const h = head.rows[0];
    return { region, entries, ...(h && h.hash !== null ? { storedHead: { seq: Number(h.seq), hash: h.hash } } : {}) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** Runs `audit …` (args without the leading `audit`); returns the exit code. */
export async function runAuditCli(args: readonly string[], io: CliIo): Promise<number> {
  let cmd: AuditCommand;
  try {
    cmd = parseAuditArgs(args);
  } catch (err) {
    io.err(`regionsync: ${(err as Error).message}\n\n${AUDIT_USAGE}\n`);
    return 2;
  }
  if (cmd.command === 'help') {
    io.out(`${AUDIT_USAGE}\n`);
    return 0;
  }
  let ledger: Ledger;
  try {
    ledger = await readLedger(cmd.db, cmd.region);
  } catch (err) {
    io.err(`regionsync: ${(err as Error).message}\n`);
    return errorCode(err) === 'RS_CONFIG_INVALID' ? 2 : 3;
  }
  if (cmd.command === 'export') {
    io.out(cmd.format === 'csv' ? toCsv(ledger.entries) : toJsonArray(ledger.entries));
    return 0;
  }
  const v = verifyLedger(ledger.entries, ledger.storedHead, cmd.expectedHead);
  const name = `audit ledger of ${ledger.region} (${describeDb(cmd.db)})`;
  if (v.ok) {
    io.out(`${name}: intact, ${v.count} entries${v.head ? `, head ${v.head.seq}:${v.head.hash}` : ''}\n`);
    return 0;
  }
  const ref = v.against === 'expected-head' ? ' (compared with --expected-head)' : v.against === 'stored-head' ? ' (compared with regionsync.audit_head)' : '';
  io.err(`${name}: BROKEN: ${v.problem} at seq ${v.atSeq}${ref}\n`);
  return 1;
}
