// `relocate` for misplaced and moved rows: once capture has forwarded the row to its home
// jurisdiction (the bus confirmed it), the copy in this region is removed under a
// regionsync replication origin, so the removal is not forwarded (no echo: the home keeps
// the row). A row written again since (another version) is left for that write's own
// decision. Each removal is audited as `relocated`.
import type pg from 'pg';
import { appendAuditInTx } from './audit-store.js';
import type { MisplacedReason } from './reasons.js';

export interface RelocateItem {
  table: string;
  /** Primary-key values in key-column order. */
  key: Record<string, string | null>;
  /** Version the forwarded copy carried; the local copy is removed only while it still has it. */
  hlc: string;
  reason: MisplacedReason;
  /** Key as it may appear in the ledger (PII columns removed). */
  auditKey: Record<string, string | null>;
}

const quoteIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const quoteTable = (t: string): string => {
  const [schema, name] = t.includes('.') ? (t.split('.', 2) as [string, string]) : ['public', t];
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
};

/** Removes the local copies in one transaction; returns how many were removed. */
export async function purgeRelocated(db: pg.ClientBase, region: string, origin: string, items: readonly RelocateItem[]): Promise<number> {
  if (items.length === 0) return 0;
  await db.query('select pg_replication_origin_create($1) where not exists (select 1 from pg_replication_origin where roname = $1)', [origin]);
  await db.query('begin');
  let removed = 0;
  try {
    await db.query('select pg_replication_origin_session_setup($1)', [origin]);
    for (const it of items) {
      const cols = Object.keys(it.key);
      const where = cols.map((c, i) => `t.${quoteIdent(c)}::text = $${i + 3}::text`).join(' and ');
      const pk = cols.map((c) => it.key[c] ?? '').join('\u001f');
      const r = await db.query(
        `delete from ${quoteTable(it.table)} t where ${where}
           and exists (select 1 from regionsync.row_versions rv where rv.table_name = $1::text and rv.pk = $${cols.length + 3}::text and rv.hlc = $2::text and not rv.deleted)`,
        [it.table, it.hlc, ...cols.map((c) => it.key[c]), pk],
      );
      if ((r.rowCount ?? 0) === 0) continue;
      removed += 1;
      await db.query(`update regionsync.row_versions set deleted = true, deleted_at = jsonb_build_object('hlc', hlc, 'region', region) where table_name = $1 and pk = $2`, [it.table, pk]);
      await appendAuditInTx(db, region, [{ at: Date.now(), kind: 'relocated', table: it.table, key: it.auditKey, destination: region, reason: it.reason }]);
    }
    await db.query('commit');
    return removed;
  } catch (err) {
    await db.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    await db.query('select pg_replication_origin_session_reset() where pg_replication_origin_session_is_setup()').catch(() => undefined);
  }
}
