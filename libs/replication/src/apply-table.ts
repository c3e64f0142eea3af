// One table's rows of an apply round: load the local rows and versions, merge each change
// (conflict rules of @regionsync/conflict), queue the merged writes. Pure SQL building and
// merging around one TxPipeline round trip; the transaction itself belongs to the Applier.
import type pg from 'pg';
import { detectConcurrent, mergeRow, resolveConflict, type RowState, type TableStrategy } from '@regionsync/conflict';
import type { RowChange } from '@regionsync/protocol';
import type { ReplicationMetrics } from './metrics.js';
import { saveVersionsStatements, type StoredVersion, type TableSql } from './row-sql.js';
import { META_SCHEMA } from './sql-names.js';
import { sqlJson, type TxPipeline } from './tx-pipeline.js';

const HLC_ZERO = '000000000000000.000000';

// vclocks[i]: the vector clock of the message rows[i] came in.
// The reads go out with whatever is queued (the begin, or the previous round's writes);
// the writes are queued for the next round trip.
// o.insertAbsent: the loads ran on the transaction's snapshot (repeatable read), so a key
// they did not find is written with a plain INSERT (ON CONFLICT's speculative insertion cost
// the apply backend about 4 us a row). A key committed by someone else since the snapshot
// then fails the transaction with a unique violation, which the applier retries afresh.
// o.assumeAbsent: skip the loads and merge as if no key had a row or a version here (with
// insertAbsent, every write is then a plain INSERT, and a key that does exist fails the
// transaction with a unique violation: the caller retries it with the loads).
export async function applyTable(tx: TxPipeline, sql: TableSql, strategy: TableStrategy, rows: RowChange[], vclocks: Record<string, string>[], o: { region: string; metrics?: ReplicationMetrics; insertAbsent?: boolean; assumeAbsent?: boolean }): Promise<number> {
  const keys = rows.map((r) => r.key);
  const pks = keys.map((k) => sql.pkOf(k));
  const { current, versions } = o.assumeAbsent ? { current: new Map<string, Record<string, string | null>>(), versions: new Map<string, StoredVersion>() } : sql.parseLoad(...(await tx.run(...sql.loadStatements(keys, pks))) as [pg.QueryResult, pg.QueryResult]);
  const upserts: Record<string, string | null>[] = [];
  const inserts: Record<string, string | null>[] = [];
  const deletes: Record<string, string | null>[] = [];
  const newVersions = new Map<string, StoredVersion>();
  const conflicts: Record<string, unknown>[] = [];
  const states = new Map<string, RowState | undefined>();
  for (const [i, row] of rows.entries()) {
    const pk = pks[i]!;
    const local = states.has(pk) ? states.get(pk) : toState(current.get(pk), versions.get(pk), o.region);
    const seen = newVersions.get(pk)?.seen ?? versions.get(pk)?.seen ?? undefined;
    if (local && detectConcurrent(local, row.version, vclocks[i]!, seen ?? undefined)) {
      conflicts.push({ table_name: sql.info.name, pk, local_version: local.version, remote_version: row.version, winner: resolveConflict(local, row), strategy: strategy.kind });
    }
    // Redacted columns never overwrite what this region holds (and are remembered, so a
    // local write here never sends the blanks back to the jurisdiction holding the real values).
    const keep = row.redacted?.length ? [...(row.unchangedToast ?? []), ...row.redacted] : row.unchangedToast;
    const result = mergeRow(local, keep === row.unchangedToast ? row : { op: row.op, values: row.values, unchangedToast: keep, counters: row.counters, version: row.version }, strategy);
    states.set(pk, result.state);
    if (!result.changed) continue;
    const st = result.state;
    newVersions.set(pk, {
      pk, hlc: st.version.hlc, region: st.version.region, deleted: st.values === null,
      column_versions: st.columnVersions ?? null, counters: st.counters ?? null, deleted_at: st.deletedAt ?? null,
      seen: st.version.region === row.version.region && st.version.hlc === row.version.hlc ? vclocks[i]! : seen ?? null,
      redacted: mergeRedacted(newVersions.get(pk)?.redacted ?? versions.get(pk)?.redacted ?? null, row.redacted),
    });
  }
  // Write each changed row's final state once (at its last occurrence).
  const lastIndex = new Map<string, number>();
  for (const [i, pk] of pks.entries()) lastIndex.set(pk, i);
  for (const [i, row] of rows.entries()) {
    const pk = pks[i]!;
    if (!newVersions.has(pk) || lastIndex.get(pk) !== i) continue;
    const st = states.get(pk)!;
    if (st.values === null) deletes.push(row.key);
    else (o.insertAbsent && !current.has(pk) ? inserts : upserts).push({ ...st.values, ...row.key });
  }
  const del = sql.deleteStatement(deletes);
  if (del) tx.queue(del);
  for (const up of sql.upsertStatements(upserts)) tx.queue(up);
  for (const ins of sql.upsertStatements(inserts, true)) tx.queue(ins);
  const saved = [...newVersions.values()];
  const fresh = o.insertAbsent ? saved.filter((v) => !versions.has(v.pk)) : [];
  for (const save of saveVersionsStatements(sql.info.name, fresh.length > 0 ? saved.filter((v) => versions.has(v.pk)) : saved)) tx.queue(save);
  for (const add of saveVersionsStatements(sql.info.name, fresh, true)) tx.queue(add);
  if (conflicts.length > 0) {
    tx.queue(
      `insert into ${META_SCHEMA}.conflicts (table_name, pk, local_version, remote_version, winner, strategy) select c.table_name, c.pk, c.local_version, c.remote_version, c.winner, c.strategy from jsonb_to_recordset(${sqlJson(conflicts)}) as c(table_name text, pk text, local_version jsonb, remote_version jsonb, winner text, strategy text)`,
    );
    o.metrics?.conflicts.inc({ table: sql.info.name }, conflicts.length);
  }
  return newVersions.size;
}

function mergeRedacted(held: string[] | null, incoming: string[] | undefined): string[] | null {
  if (!incoming?.length) return held;
  return [...new Set([...(held ?? []), ...incoming])].sort();
}

function toState(values: Record<string, string | null> | undefined, v: StoredVersion | undefined, region: string): RowState | undefined {
  if (!v) return values ? { values, version: { hlc: HLC_ZERO, region } } : undefined;
  const state: RowState = { values: v.deleted ? null : values ?? null, version: { hlc: v.hlc, region: v.region } };
  if (v.column_versions) state.columnVersions = v.column_versions;
  if (v.counters) state.counters = v.counters;
  if (v.deleted_at) state.deletedAt = v.deleted_at;
  return state;
}
