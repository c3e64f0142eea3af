// `regionsync erase` and `regionsync export`: argument parsing (pure) and the I/O.
// erase publishes one erasure request on the control subject; every region's agent reads it
// with its own durable consumer (a region cut off now reads it when it returns), erases
// locally and publishes an erasure-ack. The command waits up to --wait-s for every region's
// ack; `erase --status <request-id>` reads the acks again later.
// export reads the subject's rows straight from each region's database: the data never
// goes through the bus, whose storage may sit outside the rows' jurisdiction.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createBus, type BusKind } from '@regionsync/bus';
import { erasureTables, exportSubject, loadPolicyFile, type CliIo } from '@regionsync/gdpr';
import { controlSubject, createCodec, errorCode, makeEnvelope, RegionsyncError, regionSchema, requestIdSchema, type ErasureAckBody } from '@regionsync/protocol';

export const ERASURE_USAGE = `usage:
  regionsync erase --subject <id> --bus nats|kafka --servers <a,b> --regions <r1,r2,…> [--prefix <p>] [--wait-s <n>] [--request-id <id>] [--tables <schema.t1,…>]
      asks every region to erase the subject's rows (tables with a subjectColumn in the policy);
      waits up to --wait-s (default 60) for each region's acknowledgement
  regionsync erase --status <request-id> --bus … --servers … --regions … [--prefix <p>] [--wait-s <n>]
      reports which regions have carried out an earlier request
  regionsync export --subject <id> --policy <file> --db <region>=<postgres-url> [--db …]
      prints the subject's rows from every region that holds them as one JSON document
exit codes: 0 done, 2 bad arguments, 3 a broker or database unreachable,
  4 erasure requested but some regions have not acknowledged yet (they carry it out when they reconnect)`;

export type ErasureCommand =
  | { command: 'help' }
  | { command: 'erase'; subject?: string; status?: string; requestId: string; bus: BusKind; servers: string[]; prefix: string; regions: string[]; waitS: number; tables?: string[] }
  | { command: 'export'; subject: string; policy: string; dbs: { region: string; url: string }[] };

const OPTIONS: Record<'erase' | 'export', readonly string[]> = {
  erase: ['--subject', '--status', '--bus', '--servers', '--prefix', '--regions', '--wait-s', '--request-id', '--tables'],
  export: ['--subject', '--policy', '--db'],
};
const REPEATABLE = new Set(['--db']);

function usageError(message: string): never {
  throw new RegionsyncError('RS_CONFIG_INVALID', message);
}

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

/** Parses `erase …` or `export …`. Throws RS_CONFIG_INVALID naming the argument and what was expected. */
export function parseErasureArgs(command: 'erase' | 'export', args: readonly string[], newId: () => string = () => `er-${Date.now()}-${randomBytes(4).toString('hex')}`): ErasureCommand {
  const allowed = OPTIONS[command];
  const values = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--help' || arg === '-h') return { command: 'help' };
    const eq = arg.indexOf('=');
    const name = eq > 0 && arg.startsWith('--') ? arg.slice(0, eq) : arg;
    if (!name.startsWith('--')) usageError(`${command}: unexpected argument at position ${i + 1} (options are ${allowed.join(', ')})`);
    if (!allowed.includes(name)) usageError(`${command}: unknown option ${JSON.stringify(name.slice(0, 40))} (expected one of ${allowed.join(', ')})`);
    if (values.has(name) && !REPEATABLE.has(name)) usageError(`${command}: ${name} given twice`);
    const value = eq > 0 && arg.startsWith('--') ? arg.slice(eq + 1) : args[++i];
    if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) usageError(`${command}: ${name}: expected a value`);
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  const one = (n: string) => values.get(n)?.[0];
  const subject = one('--subject');
  if (subject !== undefined && subject.length > 500) usageError(`${command}: --subject: expected at most 500 characters`);
  if (command === 'export') {
    if (subject === undefined) usageError('export: --subject: required (the data subject id, as stored in the policy subjectColumn)');
    const policy = one('--policy') ?? usageError('export: --policy: required (the residency policy YAML naming each table\'s subjectColumn)');
    const dbs = (values.get('--db') ?? []).map((v) => {
      const at = v.indexOf('=');
      const region = at > 0 ? v.slice(0, at) : '';
      if (!regionSchema.safeParse(region).success) usageError('export: --db: expected <region>=<postgres-url> with a region name such as eu-west-1');
      const url = v.slice(at + 1);
      if (!/^postgres(ql)?:\/\//.test(url)) usageError(`export: --db ${region}=…: expected a postgres:// or postgresql:// URL`);
      return { region, url };
    });
    if (dbs.length === 0) usageError('export: --db: required at least once (<region>=<postgres-url> per region)');
    if (new Set(dbs.map((d) => d.region)).size !== dbs.length) usageError('export: --db: each region at most once');
    return { command: 'export', subject, policy, dbs };
  }
  const status = one('--status');
  if ((subject === undefined) === (status === undefined)) usageError('erase: expected exactly one of --subject <id> (a new request) or --status <request-id> (an earlier one)');
  if (status !== undefined && !requestIdSchema.safeParse(status).success) usageError('erase: --status: expected a request id of 1-128 characters [A-Za-z0-9._:-]');
  const requestId = status ?? one('--request-id') ?? newId();
  if (!requestIdSchema.safeParse(requestId).success) usageError('erase: --request-id: expected 1-128 characters [A-Za-z0-9._:-]');
  const bus = one('--bus');
  if (bus !== 'nats' && bus !== 'kafka') usageError('erase: --bus: expected nats or kafka');
  const servers = list(one('--servers') ?? '');
  if (servers.length === 0) usageError('erase: --servers: required (NATS URLs or Kafka host:port brokers, comma-separated)');
  const regions = list(one('--regions') ?? '');
  if (regions.length === 0) usageError('erase: --regions: required (every region of the cluster, comma-separated)');
  for (const r of regions) if (!regionSchema.safeParse(r).success) usageError('erase: --regions: expected region names such as eu-west-1');
  const prefix = one('--prefix') ?? 'regionsync';
  if (!/^[a-z][a-z0-9-]*$/.test(prefix)) usageError('erase: --prefix: expected [a-z][a-z0-9-]*');
  const waitRaw = one('--wait-s') ?? '60';
  const waitS = Number(waitRaw);
  if (!/^\d{1,5}$/.test(waitRaw) || waitS > 86_400) usageError('erase: --wait-s: expected whole seconds between 0 and 86400');
  const tables = one('--tables') === undefined ? undefined : list(one('--tables')!);
  if (tables?.some((t) => !/^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*$/.test(t))) usageError('erase: --tables: expected schema.table names, comma-separated');
  return { command: 'erase', ...(subject !== undefined ? { subject } : { status }), requestId, bus, servers, prefix, regions, waitS, ...(tables ? { tables } : {}) };
}

export interface EraseReport {
  requestId: string;
  complete: boolean;
  regions: Record<string, { status: 'erased'; rowsErased: number; completedAt: number } | { status: 'pending' }>;
}

/** Publishes the request (unless --status) and collects acknowledgements until every region answered or --wait-s passed. */
export async function runErase(cmd: Extract<ErasureCommand, { command: 'erase' }>): Promise<EraseReport> {
  const codec = createCodec();
  const bus = createBus({ kind: cmd.bus, servers: cmd.servers, prefix: cmd.prefix, clientId: `regionsync-cli-${cmd.requestId}` });
  const acks = new Map<string, ErasureAckBody>();
  const stop = new AbortController();
  try {
    const connected = bus.connect();
    const deadline = new Promise<void>((r) => setTimeout(r, Math.max(cmd.waitS, 5) * 1000).unref());
    await Promise.race([connected, deadline.then(() => Promise.reject(new RegionsyncError('RS_BUS_CONNECT', `erase: no ${cmd.bus} broker reachable at ${cmd.servers.join(', ')}`)))]);
    await bus.provision({ regions: cmd.regions });
    const subject = controlSubject(cmd.prefix);
    if (cmd.subject !== undefined) {
      const env = makeEnvelope('control', 'coordinator', { action: 'erasure-request', requestId: cmd.requestId, subject: cmd.subject, ...(cmd.tables ? { tables: cmd.tables } : {}) }, cmd.requestId);
      await bus.publish(subject, codec.encode(env), { id: env.id });
    }
    let allIn: () => void = () => undefined;
    const done = new Promise<void>((r) => (allIn = r));
    const consumer = bus.consume({
      subject,
      durable: `erase-cli-${randomBytes(6).toString('hex')}`,
      signal: stop.signal,
      handler: async (m) => {
        const env = codec.decode(m.data);
        if (env.kind !== 'control' || env.body.action !== 'erasure-ack' || env.body.requestId !== cmd.requestId) return;
        acks.set(env.body.region, env.body);
        if (cmd.regions.every((r) => acks.has(r))) allIn();
      },
    });
    await Promise.race([done, new Promise<void>((r) => setTimeout(r, cmd.waitS * 1000).unref())]);
    stop.abort();
    await consumer.done;
  } finally {
    stop.abort();
    await bus.close().catch(() => undefined);
  }
  const regions: EraseReport['regions'] = {};
  for (const r of cmd.regions) {
    const a = acks.get(r);
    regions[r] = a ? { status: 'erased', rowsErased: a.rowsErased, completedAt: a.completedAt } : { status: 'pending' };
  }
  return { requestId: cmd.requestId, complete: cmd.regions.every((r) => acks.has(r)), regions };
}

export interface ExportDocument {
  subject: string;
  exportedAt: string;
  regions: Record<string, { status: 'ok'; tables: Record<string, Record<string, unknown>[]>; redacted: Record<string, Record<string, string[]>> } | { status: 'unreachable'; error: string }>;
}

export async function runExport(cmd: Extract<ErasureCommand, { command: 'export' }>): Promise<ExportDocument> {
  const policy = loadPolicyFile(cmd.policy);
  const tables = erasureTables(policy, Object.keys(policy.tables));
  const doc: ExportDocument = { subject: cmd.subject, exportedAt: new Date().toISOString(), regions: {} };
  for (const { region, url } of cmd.dbs) {
    const db = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: 'regionsync-export' });
    // A session the server ends surfaces through the pending query; unheard, pg's 'error' event would end the process.
    db.on('error', () => undefined);
    try {
      await db.connect();
      doc.regions[region] = { status: 'ok', ...(await exportSubject(db, cmd.subject, tables)) };
    } catch (err) {
      // The error names host/database problems, never the URL's password.
      doc.regions[region] = { status: 'unreachable', error: (err as Error).message.slice(0, 200) };
    } finally {
      await db.end().catch(() => undefined);
    }
  }
  return doc;
}

/** Runs `erase …` / `export …` and returns the exit code. */
export async function runErasureCli(command: 'erase' | 'export', args: readonly string[], io: CliIo): Promise<number> {
  let cmd: ErasureCommand;
  try {
    cmd = parseErasureArgs(command, args);
  } catch (err) {
    io.err(`regionsync ${(err as Error).message}\n\n${ERASURE_USAGE}\n`);
    return 2;
  }
  if (cmd.command === 'help') {
    io.out(`${ERASURE_USAGE}\n`);
    return 0;
  }
  try {
    if (cmd.command === 'export') {
      const doc = await runExport(cmd);
      io.out(`${JSON.stringify(doc, null, 2)}\n`);
      return Object.values(doc.regions).every((r) => r.status === 'ok') ? 0 : 3;
    }
    const report = await runErase(cmd);
    io.out(`${JSON.stringify(report, null, 2)}\n`);
    if (!report.complete) {
      const pending = Object.entries(report.regions).filter(([, v]) => v.status === 'pending').map(([k]) => k);
      io.err(`regionsync erase: ${pending.join(', ')} ha${pending.length === 1 ? 's' : 've'} not acknowledged ${report.requestId} yet; they carry it out when they reconnect (check with erase --status ${report.requestId})\n`);
      return 4;
    }
    return 0;
  } catch (err) {
    io.err(`regionsync ${command}: ${errorCode(err) ?? 'error'}: ${(err as Error).message}\n`);
    return 3;
  }
}
