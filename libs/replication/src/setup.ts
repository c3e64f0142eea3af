import type pg from 'pg';
import { RegionsyncError } from '@regionsync/protocol';
import { stampTriggerDdl } from './stamp-triggers.js';
import { loadTableInfo, type TableInfo } from './table-info.js';
import { forgetDestinations } from './snapshot.js';
import { META_SCHEMA, PUBLICATION, originName, quoteTable, slotName, type TableName } from './sql-names.js';

export interface TableConfig {
  name: TableName;
  strategy: 'row-lww' | 'column-lww';
  counterColumns: string[];
}

export interface SetupOptions {
  region: string;
  database: string; // namespace of slot and origin names
  regions: string[]; // every region of the cluster, including this one
  tables: TableConfig[];
}

/** Oldest PostgreSQL the agent runs against (the stack tests 15 and 17, mixed). */
export const MIN_SERVER_VERSION_NUM = 150000;

/**
 * What is wrong with the server's version (`server_version_num`), if anything. PostgreSQL
 * 15 is the oldest with everything capture and apply use (pgoutput logical messages and
 * publish_via_partition_root, GRANT SET ON PARAMETER for the apply session's settings).
 */
export function serverVersionProblem(serverVersionNum: string | undefined): string | undefined {
  const n = Number(serverVersionNum);
  if (!Number.isInteger(n) || n <= 0) return `server_version_num is '${serverVersionNum ?? ''}', expected a number such as 150004`;
  if (n >= MIN_SERVER_VERSION_NUM) return undefined;
  return `server version is ${Math.floor(n / 10000)} (server_version_num ${n}), needs PostgreSQL ${MIN_SERVER_VERSION_NUM / 10000} or newer (upgrade the server; regionsync is tested on 15 and 17)`;
}

/** Checks the server version and the settings logical replication needs, naming the setting and the fix. */
export async function checkPrerequisites(db: pg.ClientBase): Promise<void> {
  const r = await db.query<{ name: string; setting: string }>(
    `select name, setting from pg_settings where name in ('server_version_num','wal_level','track_commit_timestamp','max_replication_slots','max_wal_senders')`,
  );
  const s = Object.fromEntries(r.rows.map((x) => [x.name, x.setting]));
  const problems: string[] = [];
  const version = serverVersionProblem(s.server_version_num);
  if (version) problems.push(version);
  if (s.wal_level !== 'logical') problems.push(`wal_level is '${s.wal_level}', needs 'logical' (ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL)`);
  if (s.track_commit_timestamp !== 'on') problems.push(`track_commit_timestamp is '${s.track_commit_timestamp}', needs 'on' (ALTER SYSTEM SET track_commit_timestamp = on; then restart PostgreSQL)`);
  if (Number(s.max_replication_slots) < 1) problems.push('max_replication_slots is 0, needs at least 1 free slot');
  if (Number(s.max_wal_senders) < 1) problems.push('max_wal_senders is 0, needs at least 1');
  if (problems.length > 0) throw new RegionsyncError('RS_CONFIG_PREREQUISITE', `PostgreSQL is not ready for regionsync: ${problems.join('; ')}`);
}

const META_DDL = `
create schema if not exists ${META_SCHEMA};
create table if not exists ${META_SCHEMA}.settings (id int primary key default 1 check (id = 1), region text not null);
create table if not exists ${META_SCHEMA}.node_clock (id int primary key default 1 check (id = 1), max_hlc text not null default '', vclock jsonb not null default '{}');
insert into ${META_SCHEMA}.node_clock (id) values (1) on conflict do nothing;
-- Version of every replicated row (and tombstones of deleted ones). Written by the stamp
-- triggers for local writes and by apply for remote ones. Not published: capture learns
-- local versions from the triggers' logical messages (stamp-triggers.ts).
create table if not exists ${META_SCHEMA}.row_versions (
  table_name text not null,
  pk text not null,
  hlc text not null,
  region text not null,
  deleted boolean not null default false,
  column_versions jsonb,
  counters jsonb,
  deleted_at jsonb,
  seen jsonb,
  -- Columns this region only ever received redacted (PII kept in another jurisdiction):
  -- local writes never send them back, so they cannot wipe the real values at home.
  redacted text[],
  primary key (table_name, pk)
);
alter table ${META_SCHEMA}.row_versions add column if not exists redacted text[];
create table if not exists ${META_SCHEMA}.conflicts (
  id bigserial primary key,
  table_name text not null,
  pk text not null,
  local_version jsonb not null,
  remote_version jsonb not null,
  winner text not null,
  strategy text not null,
  detected_at timestamptz not null default now()
);
-- Messages applied, recorded in the apply transaction: a redelivery is skipped by id, and a
-- message that arrives after a later one from the same source (publish retried after a
-- failure) is still applied, never mistaken for a duplicate by the progress watermark.
create table if not exists ${META_SCHEMA}.applied_messages (source text not null, commit_lsn pg_lsn not null, chunk int not null, applied_at timestamptz not null default now(), primary key (source, commit_lsn, chunk));
-- The periodic clean-up finds expired records through this index: a day of records at
-- production rates is tens of millions of rows, and a scan of them on every clean-up would
-- stall the apply session it runs on.
create index if not exists applied_messages_applied_at on ${META_SCHEMA}.applied_messages (applied_at);
create table if not exists ${META_SCHEMA}.table_schemas (table_name text primary key, fingerprint text not null, updated_at timestamptz not null default now());
create or replace function ${META_SCHEMA}.next_hlc(floor_hlc text) returns text language plpgsql as $$
declare
  wall bigint := floor(extract(epoch from clock_timestamp()) * 1000);
  fw bigint;
  fl int;
begin
  if floor_hlc is null or floor_hlc = '' then return lpad(wall::text, 15, '0') || '.000000'; end if;
  fw := split_part(floor_hlc, '.', 1)::bigint;
  fl := split_part(floor_hlc, '.', 2)::int;
  if wall > fw then return lpad(wall::text, 15, '0') || '.000000'; end if;
  if fl >= 999999 then return lpad((fw + 1)::text, 15, '0') || '.000000'; end if;
  return lpad(fw::text, 15, '0') || '.' || lpad((fl + 1)::text, 6, '0');
end $$;
`;

/**
 * Creates, idempotently, everything the agent needs: metadata schema, stamp triggers,
 * publication (the replicated tables), slot and one origin per source region.
 */
export async function setupDatabase(db: pg.ClientBase, opts: SetupOptions): Promise<TableInfo[]> {
  await checkPrerequisites(db);
  const infos: TableInfo[] = [];
  for (const t of opts.tables) infos.push(await loadTableInfo(db, t.name));
  for (const [i, t] of opts.tables.entries()) {
    const info = infos[i]!;
    for (const c of t.counterColumns) {
      if (!info.columns.some((col) => col.name === c)) throw new RegionsyncError('RS_CONFIG_INVALID', `tables.${t.name}.counterColumns: column ${c} does not exist in ${t.name}`);
    }
  }
  // Serialise concurrent agents setting up the same database.
  await db.query('select pg_advisory_lock(hashtext($1))', ['regionsync-setup']);
  try {
    await db.query(META_DDL);
    await db.query(`insert into ${META_SCHEMA}.settings (id, region) values (1, $1) on conflict (id) do update set region = excluded.region`, [opts.region]);
    for (const [i, t] of opts.tables.entries()) await db.query(stampTriggerDdl(infos[i]!, t));
    // Versions reach capture as logical messages from the stamp triggers, not as
    // row_versions changes: publishing that table made both walsenders decode, and capture
    // parse, a version record for every row written, local or applied.
    const tableList = infos.map((t) => quoteTable(t.name)).join(', ');
    const pub = await db.query('select 1 from pg_publication where pubname = $1', [PUBLICATION]);
    // Changes of a partitioned table under its own name: by default pgoutput names the
    // partition a row is in, which no configured table matches, and capture dropped them.
    if (pub.rowCount === 0) await db.query(`create publication ${PUBLICATION} for table ${tableList} with (publish_via_partition_root = true)`);
    else {
      await db.query(`alter publication ${PUBLICATION} set table ${tableList}`);
      await db.query(`alter publication ${PUBLICATION} set (publish_via_partition_root = true)`);
    }
    for (const source of opts.regions) {
      if (source === opts.region) continue;
      const o = await db.query('select 1 from pg_replication_origin where roname = $1', [originName(source, opts.database)]);
      if (o.rowCount === 0) await db.query('select pg_replication_origin_create($1)', [originName(source, opts.database)]);
    }
    const slot = await db.query<{ plugin: string }>('select plugin from pg_replication_slots where slot_name = $1', [slotName(opts.region, opts.database)]);
    if (slot.rowCount === 0) {
      // No slot: a first start, or one dropped while the agent was away, whose unread
      // changes are gone. Forgetting the destinations makes the start's initial copy send
      // them everything (a no-op on a first start: none is recorded yet).
      await forgetDestinations(db, opts.regions.filter((r) => r !== opts.region));
      await db.query(`select pg_create_logical_replication_slot($1, 'pgoutput')`, [slotName(opts.region, opts.database)]);
    }
    else if (slot.rows[0]!.plugin !== 'pgoutput') throw new RegionsyncError('RS_REPLICATION_SLOT', `slot ${slotName(opts.region, opts.database)} exists with plugin ${slot.rows[0]!.plugin}; drop it (SELECT pg_drop_replication_slot('${slotName(opts.region, opts.database)}')) and restart`);
  } finally {
    await db.query('select pg_advisory_unlock(hashtext($1))', ['regionsync-setup']);
  }
  return infos;
}
