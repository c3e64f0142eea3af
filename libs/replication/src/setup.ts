import { createHash } from 'node:crypto';
import type pg from 'pg';
import { RegionsyncError } from '@regionsync/protocol';
import { ROW_VERSION_PREFIX, STATEMENT_STAMP_PREFIX } from './assembler.js';
import { loadTableInfo, type TableInfo } from './table-info.js';
import { META_SCHEMA, PUBLICATION, originName, quoteIdent, quoteLiteral, quoteTable, slotName, type TableName } from './sql-names.js';

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

/** Checks the server settings logical replication needs, naming the setting and the fix. */
export async function checkPrerequisites(db: pg.ClientBase): Promise<void> {
  const r = await db.query<{ name: string; setting: string }>(
    `select name, setting from pg_settings where name in ('wal_level','track_commit_timestamp','max_replication_slots','max_wal_senders')`,
  );
  const s = Object.fromEntries(r.rows.map((x) => [x.name, x.setting]));
  const problems: string[] = [];
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
-- trigger for local writes and by apply for remote ones; part of the publication so the
-- versions travel in the same WAL stream as the rows.
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

function pkExpr(rec: 'NEW' | 'OLD', keys: string[]): string {
  return keys.map((k) => `coalesce(${rec}.${quoteIdent(k)}::text, '')`).join(` || chr(31) || `);
}

/**
 * Transaction-local setting holding the stamp of the current (or last) INSERT statement
 * on a table, as JSON: the AFTER STATEMENT trigger writes the versions with it and the row
 * trigger stamps above it. Named per table (readable prefix plus a hash, so two tables
 * whose names differ only in punctuation do not share it).
 */
export function statementStampSetting(table: TableName): string {
  return `${META_SCHEMA}.stamp_${table.replace(/\W/g, '_').toLowerCase().slice(0, 40)}_${createHash('sha1').update(table).digest('hex').slice(0, 8)}`;
}

/**
 * Every local write gets its version: an HLC above both the row's previous version and
 * everything this region has applied (so a write made after seeing another one always
 * wins over it, whatever the wall clock says), and for counter columns this region's
 * cumulative contribution. Writes made by apply (a replication origin is set up in the
 * session) are left alone: apply records their versions itself.
 *
 * Two paths, because a per-row INSERT into row_versions was most of the cost of a bulk
 * insert (33 us a row against 2.5 for the insert itself):
 * - INSERT of a key without a version record (the common case) is stamped per statement.
 *   A BEFORE STATEMENT trigger takes one stamp and sends it as a transactional logical
 *   message, so in the WAL it precedes the statement's rows and capture versions each row
 *   as it arrives; an AFTER STATEMENT trigger writes the same versions set-based from the
 *   transition table.
 * - UPDATE, DELETE and the INSERT of a key that has a version (a tombstone, or a row
 *   written before its version was recorded) keep the per-row trigger: a BEFORE trigger
 *   that records the version and sends it as a logical message, so it reaches the WAL
 *   just before its row, stamped above the statement's.
 * row_versions is not published: capture learns every version from these messages.
 */
function stampTriggerDdl(t: TableInfo, cfg: TableConfig): string {
  const fn = `${META_SCHEMA}.${quoteIdent(`stamp_${t.name.replace(/\W/g, '_')}`)}`;
  const counterUpdates = cfg.counterColumns
    .map((c) => {
      const col = quoteIdent(c);
      const delta = `(case when TG_OP = 'INSERT' then coalesce(NEW.${col}, 0) when TG_OP = 'UPDATE' then coalesce(NEW.${col}, 0) - coalesce(OLD.${col}, 0) else 0 end)`;
      return `
    if v_counters -> ${quoteLiteral(c)} is null then v_counters := v_counters || jsonb_build_object(${quoteLiteral(c)}, '{}'::jsonb); end if;
    if ${delta} <> 0 or (v_counters -> ${quoteLiteral(c)} -> v_region) is null then
      v_counters := jsonb_set(v_counters, array[${quoteLiteral(c)}, v_region], jsonb_build_object(
        'total', (coalesce((v_counters -> ${quoteLiteral(c)} -> v_region ->> 'total')::numeric, 0) + ${delta})::text,
        'version', jsonb_build_object('hlc', v_hlc, 'region', v_region)), true);
    end if;`;
    })
    .join('');
  // next_hlc, inlined (a function call per row costs more than the rule itself).
  const nextHlc = (floor: string) => `
  v_floor := ${floor};
  v_wall := floor(extract(epoch from clock_timestamp()) * 1000);
  if v_floor = '' then
    v_hlc := lpad(v_wall::text, 15, '0') || '.000000';
  else
    v_fw := split_part(v_floor, '.', 1)::bigint;
    v_fl := split_part(v_floor, '.', 2)::int;
    if v_wall > v_fw then v_hlc := lpad(v_wall::text, 15, '0') || '.000000';
    elsif v_fl >= 999999 then v_hlc := lpad((v_fw + 1)::text, 15, '0') || '.000000';
    else v_hlc := lpad(v_fw::text, 15, '0') || '.' || lpad((v_fl + 1)::text, 6, '0');
    end if;
  end if;`;
  const tbl = quoteLiteral(t.name);
  const setting = quoteLiteral(statementStampSetting(t.name));
  // The version travels to capture as a transactional logical message just before its row
  // (row_versions itself is not published: most versions are local bookkeeping).
  const versionMessage = (counters: string, redacted: string, deleted: string) => `
    perform pg_logical_emit_message(true, '${ROW_VERSION_PREFIX}', jsonb_build_object('table', ${tbl}, 'pk', v_pk, 'hlc', v_hlc, 'region', v_region, 'deleted', ${deleted}, 'counters', ${counters}, 'seen', v_seen, 'redacted', to_jsonb(${redacted}))::text);`;
  const sameKey = t.keyColumns.map((k) => `x.${quoteIdent(k)} = NEW.${quoteIdent(k)}`).join(' and ');
  return `
create or replace function ${fn}() returns trigger language plpgsql as $$
declare
  v_pk text;
  v_old ${META_SCHEMA}.row_versions;
  v_max text;
  v_seen jsonb;
  v_region text;
  v_hlc text;
  v_counters jsonb;
  v_deleted_at jsonb;
  v_placed int := 0;
  v_floor text;
  v_wall bigint;
  v_fw bigint;
  v_fl int;
begin
  if pg_replication_origin_session_is_setup() then
    if TG_OP = 'DELETE' then return OLD; end if;
    return NEW;
  end if;
  if TG_OP = 'DELETE' then v_pk := ${pkExpr('OLD', t.keyColumns)}; else v_pk := ${pkExpr('NEW', t.keyColumns)}; end if;
  -- A new key: the statement's stamp covers it (written after the statement, set-based).
  if TG_OP = 'INSERT' then
    perform 1 from ${META_SCHEMA}.row_versions where table_name = ${tbl} and pk = v_pk;
    if not found then return NEW; end if;
  end if;
  -- The clock, what this region has applied and the region name in one lookup. The floor
  -- includes this transaction's last statement stamp on the table, so a per-row version
  -- written after it is always above it: capture tells the two apart by that.
  select greatest(c.max_hlc, coalesce(nullif(current_setting(${setting}, true), '')::jsonb ->> 'hlc', '')), c.vclock, s.region into v_max, v_seen, v_region
    from ${META_SCHEMA}.node_clock c, ${META_SCHEMA}.settings s where c.id = 1 and s.id = 1;
  -- An INSERT whose key exists will not write this row (ON CONFLICT DO NOTHING) or will
  -- become an UPDATE that stamps itself (DO UPDATE): stamping here would leave a version no
  -- row carries. A new key (the common case) is stamped with a single insert of its final
  -- version, which is also the per-key lock: a concurrent insert of the same key waits on
  -- the unique index until ours commits. (Not an advisory lock: a 100,000-row insert would
  -- exhaust the shared lock table.) The existing row is read FOR UPDATE so a concurrent
  -- DELETE of it is waited for: if it goes, we do stamp.
  if TG_OP = 'INSERT' then${nextHlc("coalesce(v_max, '')")}
    v_counters := '{}'::jsonb;${counterUpdates.replace(/\n/g, '\n  ')}
    insert into ${META_SCHEMA}.row_versions (table_name, pk, hlc, region, counters, seen)
      values (${tbl}, v_pk, v_hlc, v_region, nullif(v_counters, '{}'::jsonb), v_seen) on conflict do nothing;
    get diagnostics v_placed = row_count;
    perform 1 from ${quoteTable(t.name)} x where ${sameKey} for update;
    if found then
      -- A row written before regionsync was set up has no version: leave none behind.
      if v_placed > 0 then delete from ${META_SCHEMA}.row_versions where table_name = ${tbl} and pk = v_pk; end if;
      return NEW;
    end if;
    if v_placed > 0 then${versionMessage("nullif(v_counters, '{}'::jsonb)", 'null::text[]', 'false')}
      return NEW;
    end if;
    -- A tombstone: the key comes back, stamped above it.
  end if;
  select * into v_old from ${META_SCHEMA}.row_versions where table_name = ${tbl} and pk = v_pk for update;${nextHlc("greatest(coalesce(v_old.hlc, ''), coalesce(v_max, ''))")}
  v_counters := coalesce(v_old.counters, '{}'::jsonb);
  v_deleted_at := v_old.deleted_at;
  if TG_OP = 'DELETE' then
    v_deleted_at := jsonb_build_object('hlc', v_hlc, 'region', v_region);
  else${counterUpdates}
  end if;
  insert into ${META_SCHEMA}.row_versions as rv (table_name, pk, hlc, region, deleted, column_versions, counters, deleted_at, seen, redacted)
  values (${tbl}, v_pk, v_hlc, v_region, TG_OP = 'DELETE', null, nullif(v_counters, '{}'::jsonb), v_deleted_at, v_seen, v_old.redacted)
  on conflict (table_name, pk) do update set hlc = excluded.hlc, region = excluded.region, deleted = excluded.deleted,
    column_versions = null, counters = excluded.counters, deleted_at = excluded.deleted_at, seen = excluded.seen, redacted = excluded.redacted;${versionMessage("nullif(v_counters, '{}'::jsonb)", 'v_old.redacted', "TG_OP = 'DELETE'")}
  if TG_OP = 'DELETE' then return OLD; end if;
  return NEW;
end $$;
drop trigger if exists zz_regionsync_stamp on ${quoteTable(t.name)};
create trigger zz_regionsync_stamp before insert or update or delete on ${quoteTable(t.name)} for each row execute function ${fn}();
${statementStampDdl(t, cfg)}`;
}

/** The per-statement INSERT path (see stampTriggerDdl): one stamp before, versions after. */
function statementStampDdl(t: TableInfo, cfg: TableConfig): string {
  const base = t.name.replace(/\W/g, '_');
  const before = `${META_SCHEMA}.${quoteIdent(`stamp_before_${base}`)}`;
  const after = `${META_SCHEMA}.${quoteIdent(`stamp_after_${base}`)}`;
  const tbl = quoteLiteral(t.name);
  const setting = quoteLiteral(statementStampSetting(t.name));
  const newPk = t.keyColumns.map((k) => `coalesce(n.${quoteIdent(k)}::text, '')`).join(` || chr(31) || `);
  // A new key's counter contribution is its inserted value (as text: capture derives the
  // same from the row it sends).
  const counters = cfg.counterColumns.length === 0
    ? 'null::jsonb'
    : cfg.counterColumns
        .map((c) => `jsonb_build_object(${quoteLiteral(c)}, jsonb_build_object(v_region, jsonb_build_object('total', coalesce(n.${quoteIdent(c)}::text, '0'), 'version', jsonb_build_object('hlc', v_hlc, 'region', v_region))))`)
        .join(' || ');
  const counterList = `jsonb_build_array(${cfg.counterColumns.map(quoteLiteral).join(', ')})`;
  return `
create or replace function ${before}() returns trigger language plpgsql as $$
declare
  v_max text;
  v_seen jsonb;
  v_region text;
  v_hlc text;
  v_stamp text;
  v_floor text;
  v_wall bigint;
  v_fw bigint;
  v_fl int;
begin
  if pg_replication_origin_session_is_setup() then return null; end if;
  -- Above what this region applied and above this transaction's previous statement stamp.
  select greatest(c.max_hlc, coalesce(nullif(current_setting(${setting}, true), '')::jsonb ->> 'hlc', '')), c.vclock, s.region into v_max, v_seen, v_region
    from ${META_SCHEMA}.node_clock c, ${META_SCHEMA}.settings s where c.id = 1 and s.id = 1;
  v_hlc := ${META_SCHEMA}.next_hlc(coalesce(v_max, ''));
  v_stamp := jsonb_build_object('table', ${tbl}, 'hlc', v_hlc, 'region', v_region, 'seen', v_seen, 'counterColumns', ${counterList})::text;
  perform set_config(${setting}, v_stamp, true);
  perform pg_logical_emit_message(true, '${STATEMENT_STAMP_PREFIX}', v_stamp);
  return null;
end $$;
create or replace function ${after}() returns trigger language plpgsql as $$
declare
  v_stamp jsonb;
  v_hlc text;
  v_region text;
  v_placed bigint;
  v_rows bigint;
begin
  if pg_replication_origin_session_is_setup() then return null; end if;
  v_stamp := nullif(current_setting(${setting}, true), '')::jsonb;
  v_hlc := v_stamp ->> 'hlc';
  v_region := v_stamp ->> 'region';
  with placed as (
    insert into ${META_SCHEMA}.row_versions (table_name, pk, hlc, region, counters, seen)
    select ${tbl}, ${newPk}, v_hlc, v_region, ${counters}, v_stamp -> 'seen' from regionsync_new_rows n
    on conflict do nothing returning 1)
  select count(*) into v_placed from placed;
  -- Keys stamped per row (above) already have their version. Any other key that found a
  -- version here got a tombstone from apply while this statement ran; the row already went
  -- out under the statement's stamp, possibly below that tombstone, so the regions would
  -- disagree: fail the statement as a serialization failure (the client retries it).
  if v_placed < (select count(*) from regionsync_new_rows) and exists (
    select 1 from regionsync_new_rows n join ${META_SCHEMA}.row_versions rv on rv.table_name = ${tbl} and rv.pk = ${newPk} where rv.deleted) then
    raise exception using errcode = '40001', message = 'regionsync: a row of ' || ${tbl} || ' was deleted by a replicated change while this statement inserted it; retry the transaction';
  end if;
  return null;
end $$;
drop trigger if exists zz_regionsync_stamp_statement on ${quoteTable(t.name)};
create trigger zz_regionsync_stamp_statement before insert on ${quoteTable(t.name)} for each statement execute function ${before}();
drop trigger if exists zz_regionsync_stamp_versions on ${quoteTable(t.name)};
create trigger zz_regionsync_stamp_versions after insert on ${quoteTable(t.name)} referencing new table as regionsync_new_rows for each statement execute function ${after}();
`;
}

/**
 * Creates, idempotently, everything the agent needs: metadata schema, stamp triggers,
 * publication (replicated tables + row versions), slot and one origin per source region.
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
    await db.query(pub.rowCount === 0 ? `create publication ${PUBLICATION} for table ${tableList}` : `alter publication ${PUBLICATION} set table ${tableList}`);
    for (const source of opts.regions) {
      if (source === opts.region) continue;
      const o = await db.query('select 1 from pg_replication_origin where roname = $1', [originName(source, opts.database)]);
      if (o.rowCount === 0) await db.query('select pg_replication_origin_create($1)', [originName(source, opts.database)]);
    }
    const slot = await db.query<{ plugin: string }>('select plugin from pg_replication_slots where slot_name = $1', [slotName(opts.region, opts.database)]);
    if (slot.rowCount === 0) await db.query(`select pg_create_logical_replication_slot($1, 'pgoutput')`, [slotName(opts.region, opts.database)]);
    else if (slot.rows[0]!.plugin !== 'pgoutput') throw new RegionsyncError('RS_REPLICATION_SLOT', `slot ${slotName(opts.region, opts.database)} exists with plugin ${slot.rows[0]!.plugin}; drop it (SELECT pg_drop_replication_slot('${slotName(opts.region, opts.database)}')) and restart`);
  } finally {
    await db.query('select pg_advisory_unlock(hashtext($1))', ['regionsync-setup']);
  }
  return infos;
}
