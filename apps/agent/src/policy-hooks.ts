import type pg from 'pg';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { AUDIT_DDL, AuditQueue, ErasedSubjects, appendAuditInTx, tablePolicyOf, applyRedaction, auditKey, checkPolicyAgainstSchema, egressDecision, erasureTables, hashKeyFromEnv, ingressDecision, loadPolicyFile, misplacedDecision, policyHash, setupErasure, type ErasureTable, type MisplacedDecision, type Policy, type RelocateItem } from '@regionsync/gdpr';
import { RegionsyncError, type RowChange } from '@regionsync/protocol';
import { errInfo, loadTableInfo, oldValuesOf, quoteTable, type EgressFilter, type IngressFilter } from '@regionsync/replication';
import type { AgentConfig } from './config.js';

export interface PolicyRuntime {
  policyHash: string;
  egress?: EgressFilter;
  ingress?: IngressFilter;
  ackBarrier?: () => Promise<void>;
  auditInTx?: (db: pg.ClientBase, refused: { row: RowChange; sourceRegion: string; reason: string }[]) => Promise<void>;
  /** Tables with a subject column and the subjects erased here (present with a policy). */
  erasure?: { tables: ErasureTable[]; erased: ErasedSubjects };
  /** Local stray copies waiting to be removed once forwarded (policy `relocate`). */
  relocations?: RelocateItem[];
}

/** Loads and validates the policy file (fails fast with the key that is wrong). */
export function loadPolicy(cfg: AgentConfig): Policy | undefined {
  return cfg.policyFile ? loadPolicyFile(cfg.policyFile) : undefined;
}

const rowOf = (r: RowChange): Record<string, string | null> => ({ ...(r.values ?? {}), ...r.key });
// What the residency checks see at capture: a delete is judged by the row it removed
// (the old tuple, local knowledge under REPLICA IDENTITY FULL), not by its bare key.
const capturedRowOf = (r: RowChange): Record<string, string | null> => (r.op === 'delete' ? { ...(oldValuesOf(r) ?? {}), ...r.key } : rowOf(r));

/**
 * Home-region tables get REPLICA IDENTITY FULL so the WAL carries a row's old tuple: an
 * update that moves its home to another jurisdiction is recognised (policy `moved`) and a
 * delete is sent only where the row lived. The old tuple stays in the agent: keys come
 * from the catalogue's primary key, and a delete carries only the home column.
 */
async function ensureFullIdentity(db: pg.ClientBase, tables: string[], log: Logger): Promise<void> {
  for (const t of tables) {
    if ((await loadTableInfo(db, t)).replicaIdentity === 'full') continue;
    await db.query(`alter table ${quoteTable(t)} replica identity full`);
    log.info({ table: t }, 'replica identity set to full (old home of moved rows)');
  }
}

/**
 * Residency enforcement: egress per destination at capture (send, redact, withhold —
 * withheld and redacted transfers audited), ingress again at apply (refused rows audited
 * in the apply transaction and counted as violations). Without a policy every row travels.
 */
export async function policyRuntime(cfg: AgentConfig, policy: Policy | undefined, pool: pg.Pool, registry: Registry, log: Logger): Promise<PolicyRuntime> {
  if (!policy) {
    log.warn({}, 'no policyFile configured: every row may be replicated to every region');
    return { policyHash: 'none' };
  }
  const erasableTables = erasureTables(policy, cfg.tables.map((t) => t.name));
  const erasure = { tables: erasableTables, erased: new ErasedSubjects(erasableTables) };
  // Home column per replicated home-region table: a delete carries it so the receiver can check where the row lived.
  const homeColumn = new Map<string, string>();
  for (const t of cfg.tables) {
    const r = tablePolicyOf(policy, t.name)?.residency;
    if (r?.kind === 'home-region') homeColumn.set(t.name, r.column);
  }
  const db = await pool.connect();
  try {
    await db.query(AUDIT_DDL);
    await ensureFullIdentity(db, [...homeColumn.keys()], log);
    await setupErasure(db, erasure.tables);
    const erasedCount = await erasure.erased.load(db);
    if (erasedCount > 0) log.info({ erasedSubjects: erasedCount }, 'erased subjects loaded');
    const cols = await db.query<{ t: string; c: string }>(
      `select n.nspname || '.' || c.relname as t, a.attname as c from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r','p') and a.attnum > 0 and not a.attisdropped and n.nspname not in ('pg_catalog','information_schema','regionsync')`,
    );
    const live: Record<string, string[]> = {};
    for (const r of cols.rows) (live[r.t] ??= []).push(r.c);
    const problems = checkPolicyAgainstSchema(policy, live).filter((p) => cfg.tables.some((t) => p.startsWith(`tables.${t.name}`)));
    if (problems.length > 0) throw new RegionsyncError('RS_GDPR_POLICY_INVALID', `${cfg.policyFile}: does not match the database: ${problems.join('; ')}`);
  } finally {
    db.release();
  }
  const hashKey = hashKeyFromEnv(policy);
  const transfers = new Counter({ name: 'regionsync_gdpr_transfers_total', help: 'Egress decisions per destination (send, redact, withhold, relocate)', labelNames: ['destination', 'decision'] as const, registers: [registry] });
  const violations = new Counter({ name: 'regionsync_gdpr_violations_total', help: 'Incoming rows refused by the local residency check (should stay 0)', labelNames: ['source'] as const, registers: [registry] });
  const misplaced = new Counter({ name: 'regionsync_gdpr_misplaced_total', help: 'Local writes of rows outside their home jurisdiction, or with an unknown home (policy misplaced/moved: report)', labelNames: ['table', 'reason'] as const, registers: [registry] });
  const lateRefused = new Counter({ name: 'regionsync_gdpr_erasure_refused_total', help: 'Incoming changes for an erased data subject refused at apply (written before their region saw the erasure)', labelNames: ['source'] as const, registers: [registry] });
  const audit = new AuditQueue(pool, cfg.region, (err) => log.warn({ err: errInfo(err) }, 'audit write failed; retrying'));
  // Capture calls egress once per destination with the same row object: the placement
  // check runs once per row. Egress forwards a row only where it may live, in both modes.
  // `report`: the stray copy stays, audited and counted; an operator repairs the data.
  // `relocate`: the stray copy here is queued for removal once the forward is confirmed
  // (see relocator.ts). A moved home is recognised from the old tuple (oldValuesOf,
  // REPLICA IDENTITY FULL): under `report` the copies in the old home's regions stay,
  // audited and counted; under `relocate` those regions are sent a delete instead of the
  // withheld update (the local copy, if stray, goes through the relocator as above).
  const relocations: RelocateItem[] = [];
  const placements = new WeakMap<RowChange, MisplacedDecision>();
  const placementOf = (row: RowChange): MisplacedDecision => {
    let m = placements.get(row);
    if (m) return m;
    const old = oldValuesOf(row);
    m = row.op === 'delete' ? { action: 'ok' } : misplacedDecision(policy, { table: row.table, row: rowOf(row), localRegion: cfg.region, ...(old ? { oldRow: old } : {}) });
    placements.set(row, m);
    if (m.action === 'ok') return m;
    misplaced.inc({ table: row.table, reason: m.reason });
    const key = auditKey(policy, row.table, row.key);
    if (m.action === 'report') audit.record({ at: Date.now(), kind: 'withheld', table: row.table, key, reason: m.reason });
    else if (m.strayIn.includes(cfg.region)) relocations.push({ table: row.table, key: row.key, hlc: row.version.hlc, reason: m.reason, auditKey: key });
    return m;
  };
  const egress: EgressFilter = (row, destination) => {
    const m = placementOf(row);
    if (m.action === 'relocate' && m.reason === 'home-moved' && destination !== cfg.region && m.strayIn.includes(destination)) {
      // The destination holds the row under its old home, where it may no longer live.
      transfers.inc({ destination, decision: 'relocate' });
      audit.record({ at: Date.now(), kind: 'relocated', table: row.table, key: auditKey(policy, row.table, row.key), destination, reason: m.reason });
      return withHome({ table: row.table, op: 'delete', key: row.key, version: row.version }, oldValuesOf(row));
    }
    const d = egressDecision(policy, { table: row.table, row: capturedRowOf(row), sourceRegion: cfg.region, destination });
    // A delete carries no values to redact: it goes wherever the removed row may have lived.
    if (d.action === 'send' || (row.op === 'delete' && d.action === 'redact')) {
      transfers.inc({ destination, decision: 'send' });
      return row.op === 'delete' ? withHome(row, oldValuesOf(row)) : row;
    }
    transfers.inc({ destination, decision: d.action });
    audit.record({ at: Date.now(), kind: d.action === 'redact' ? 'redacted' : 'withheld', table: row.table, key: auditKey(policy, row.table, row.key), destination, reason: d.reason });
    if (d.action === 'withhold') return null;
    return { ...row, values: applyRedaction(row.values ?? {}, d.columns, d.actions, hashKey), redacted: d.columns };
  };
  // A delete travels as its key plus the home column of the row it removed, so the
  // receiver's ingress check judges where that row lived (a bare key reads as unknown home).
  const withHome = (row: RowChange, old: Record<string, string | null> | undefined): RowChange => {
    const col = homeColumn.get(row.table);
    if (col === undefined || old === undefined || !(col in old) || col in row.key) return row;
    return { ...row, values: { [col]: old[col] ?? null } };
  };
  const ingress: IngressFilter = (row, sourceRegion) => {
    // A delete of an erased subject's row is harmless (the row is gone already).
    if (row.op !== 'delete' && erasure.erased.requestFor(row.table, rowOf(row)) !== undefined) {
      lateRefused.inc({ source: sourceRegion });
      return { accept: false, reason: 'erasure-late-change-refused' };
    }
    const d = ingressDecision(policy, { table: row.table, row: rowOf(row), sourceRegion, localRegion: cfg.region });
    if (d.action === 'accept') return { accept: true };
    violations.inc({ source: sourceRegion });
    log.error({ table: row.table, source: sourceRegion, reason: d.reason }, 'residency violation: incoming row refused');
    return { accept: false, reason: d.reason };
  };
  const auditInTx = async (db: pg.ClientBase, refused: { row: RowChange; sourceRegion: string; reason: string }[]) => {
    await appendAuditInTx(db, cfg.region, refused.map((r) => ({ at: Date.now(), kind: r.reason.startsWith('erasure-') ? ('erasure-step' as const) : ('refused' as const), table: r.row.table, key: auditKey(policy, r.row.table, r.row.key), destination: cfg.region, reason: r.reason as never })));
  };
  return { policyHash: policyHash(policy), egress, ingress, ackBarrier: () => audit.flushed(), auditInTx, erasure, relocations };
}
