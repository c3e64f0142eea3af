// The stamp triggers: every local write to a replicated table gets its version here, and
// capture learns it from the WAL. DDL only; setup.ts installs it.
import { createHash } from 'node:crypto';
import { BASE_CONTRIBUTION } from '@regionsync/conflict';
import { LATE_VERSION_PREFIX, ROW_VERSION_PREFIX, STATEMENT_STAMP_PREFIX } from './assembler.js';
import type { TableInfo } from './table-info.js';
import { META_SCHEMA, quoteIdent, quoteLiteral, quoteTable, type TableName } from './sql-names.js';

export interface StampTableConfig {
  name: TableName;
  counterColumns: string[];
}

/**
 * Transaction-local setting holding the stamp of the current (or last) INSERT statement on
 * a table, as `<hlc> <region> <seen as JSON>`: the row trigger versions new keys with it
 * and stamps everything else above it. Named per table (readable prefix plus a hash, so
 * two tables whose names differ only in punctuation do not share it).
 */
export function statementStampSetting(table: TableName): string {
  return `${META_SCHEMA}.stamp_${table.replace(/\W/g, '_').toLowerCase().slice(0, 40)}_${createHash('sha1').update(table).digest('hex').slice(0, 8)}`;
}

function pkExpr(rec: string, keys: string[]): string {
  return keys.map((k) => `coalesce(${rec}.${quoteIdent(k)}::text, '')`).join(` || chr(31) || `);
}

// next_hlc, inlined as plain PL/pgSQL assignments (simple expressions, no SPI): a
// function call per row costs more than the rule itself.
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

/**
 * A row's columns as text (each type's output, as pgoutput sends them), generated columns
 * left out. The column list is read from the catalog at each call (a dynamic statement):
 * the triggers are generated at agent start, and a column dropped since would otherwise
 * make every statement reaching this fail. Only the rare paths use it (a key re-inserted
 * over its tombstone, an UPDATE of the key).
 */
const ROW_TEXT_DDL = `
create or replace function ${META_SCHEMA}.row_text(r anyelement) returns jsonb language plpgsql stable as $$
declare
  v_sql text;
  v_out jsonb;
begin
  select format('select jsonb_object(array[%s]::text[], array[%s]::text[])',
      string_agg(quote_literal(a.attname), ', ' order by a.attnum), string_agg(format('($1).%I::text', a.attname), ', ' order by a.attnum))
    into v_sql
    from pg_type t join pg_attribute a on a.attrelid = t.typrelid
   where t.oid = pg_typeof(r) and a.attnum > 0 and not a.attisdropped and a.attgenerated = '';
  execute v_sql into v_out using r;
  return v_out;
end $$;`;

// The variables nextHlc and the message sends use, declared by every trigger function.
const CLOCK_VARIABLES = 'v_floor text; v_wall bigint; v_fw bigint; v_fl int; v_lsn pg_lsn;';
// The variables of the functions that stamp a row (the row trigger, the inserted-rows one).
const STAMP_VARIABLES = `v_set text; v_pk text; v_old ${META_SCHEMA}.row_versions; v_max text; v_seen jsonb; v_region text; v_hlc text;
  v_counters jsonb; v_deleted_at jsonb; v_sum numeric; v_delta numeric; ${CLOCK_VARIABLES}`;

/**
 * Every local write gets its version: an HLC above both the row's previous version and
 * everything this region has applied (so a write made after seeing another one always
 * wins over it, whatever the wall clock says), and for counter columns this region's
 * cumulative contribution. Writes made by apply (a replication origin is set up in the
 * session) are left alone: apply records their versions itself.
 *
 * row_versions is not published; capture learns versions from transactional logical
 * messages:
 * - A BEFORE STATEMENT trigger on INSERT takes one stamp for the statement and sends it
 *   ahead of the rows; capture versions every inserted row it has no other version for
 *   with it.
 * - An AFTER STATEMENT trigger on INSERT records that stamp for the statement's new keys
 *   in one set-based insert from the transition table. A PL/pgSQL row trigger did this per
 *   row and cost a 1,000-row insert 30-45 ms on top of its 6 ms; set-based it costs 8-9.
 *   A key that already has a version (a tombstone, or a version a user's AFTER ROW trigger
 *   or a concurrent apply wrote) is stamped again above it, as an insert, and its version
 *   travels in a late message after the rows, with the row's current values (capture
 *   needs them when the row already left in an earlier chunk).
 * - UPDATE and DELETE are stamped per row, above the statement's stamp, by a BEFORE ROW
 *   trigger whose version message reaches the WAL just before the row.
 */
export function stampTriggerDdl(t: TableInfo, cfg: StampTableConfig): string {
  const base = t.name.replace(/\W/g, '_');
  const fn = `${META_SCHEMA}.${quoteIdent(`stamp_${base}`)}`;
  const before = `${META_SCHEMA}.${quoteIdent(`stamp_before_${base}`)}`;
  const after = `${META_SCHEMA}.${quoteIdent(`stamp_inserted_${base}`)}`;
  const tbl = quoteLiteral(t.name);
  const setting = quoteLiteral(statementStampSetting(t.name));
  // op: a PL/pgSQL expression, 'INSERT', 'UPDATE' or 'DELETE'; rec/old: the new and old row.
  const counterUpdates = (op: string, rec: string, old: string) =>
    cfg.counterColumns
      .map((c) => {
        const col = quoteIdent(c);
        // An UPDATE adds its change to this region's contribution. An INSERT here re-creates
        // a deleted key: its value is the inserted one in every region, so this region's
        // contribution becomes whatever makes the sum of all contributions equal it (the
        // tombstone keeps the old ones, and adding to them made the copies disagree).
        // An UPDATE of a value that has no contributions yet (a row from before regionsync,
        // or written unstamped) keeps that value as the base (BASE_CONTRIBUTION), which
        // capture sends with this region's contribution: otherwise the first counted change
        // dropped it everywhere but here.
        return `
    if coalesce(v_counters -> ${quoteLiteral(c)}, '{}'::jsonb) = '{}'::jsonb then
      v_counters := v_counters || jsonb_build_object(${quoteLiteral(c)}, case when ${op} = 'UPDATE' and ${old}.${col}::text ~ '^-?[0-9]+$'
        then jsonb_build_object(${quoteLiteral(BASE_CONTRIBUTION)}, jsonb_build_object('total', ${old}.${col}::text, 'version', jsonb_build_object('hlc', '000000000000000.000000', 'region', ${quoteLiteral(BASE_CONTRIBUTION)})))
        else '{}'::jsonb end);
    end if;
    if ${op} = 'INSERT' then
      select coalesce(sum((e.value ->> 'total')::numeric), 0) into v_sum from jsonb_each(v_counters -> ${quoteLiteral(c)}) e;
      v_delta := coalesce(${rec}.${col}, 0) - v_sum;
    elsif ${op} = 'UPDATE' then v_delta := coalesce(${rec}.${col}, 0) - coalesce(${old}.${col}, 0);
    else v_delta := 0;
    end if;
    -- An INSERT always restamps this region's contribution, so it carries the insert's
    -- version here as in the regions that receive it (also when the sum already matched:
    -- a user's AFTER ROW trigger that updated the new row counted it from its base).
    if v_delta <> 0 or ${op} = 'INSERT' or (v_counters -> ${quoteLiteral(c)} -> v_region) is null then
      v_counters := jsonb_set(v_counters, array[${quoteLiteral(c)}, v_region], jsonb_build_object(
        'total', (coalesce((v_counters -> ${quoteLiteral(c)} -> v_region ->> 'total')::numeric, 0) + v_delta)::text,
        'version', jsonb_build_object('hlc', v_hlc, 'region', v_region)), true);
    end if;`;
      })
      .join('');
  // A new key's counter contribution is its inserted value, as text: capture derives the
  // same from the row it sends.
  const newKeyCounters =
    cfg.counterColumns.length === 0
      ? 'null::jsonb'
      : cfg.counterColumns
          .map((c) => `jsonb_build_object(${quoteLiteral(c)}, jsonb_build_object(v_region, jsonb_build_object('total', coalesce(n.${quoteIdent(c)}::text, '0'), 'version', jsonb_build_object('hlc', v_hlc, 'region', v_region))))`)
          .join(' || ');
  const saveVersion = (deleted: string, pk = 'v_pk') => `
  insert into ${META_SCHEMA}.row_versions as rv (table_name, pk, hlc, region, deleted, column_versions, counters, deleted_at, seen, redacted)
  values (${tbl}, ${pk}, v_hlc, v_region, ${deleted}, null, nullif(v_counters, '{}'::jsonb), v_deleted_at, v_seen, v_old.redacted)
  on conflict (table_name, pk) do update set hlc = excluded.hlc, region = excluded.region, deleted = excluded.deleted,
    column_versions = null, counters = excluded.counters, deleted_at = excluded.deleted_at, seen = excluded.seen, redacted = excluded.redacted;`;
  const versionFields = (deleted: string, pk = 'v_pk') =>
    `'table', ${tbl}, 'pk', ${pk}, 'hlc', v_hlc, 'region', v_region, 'deleted', ${deleted}, 'counters', nullif(v_counters, '{}'::jsonb), 'seen', v_seen, 'redacted', to_jsonb(v_old.redacted)`;
  const textObject = (cols: string[], rec = 'r') => `jsonb_object(array[${cols.map(quoteLiteral).join(', ')}]::text[], array[${cols.map((c) => `${rec}.${quoteIdent(c)}::text`).join(', ')}]::text[])`;
  const rowText = (rec: string) => `${META_SCHEMA}.row_text(${rec})`;
  const sameKey = (a: string, b: string) => t.keyColumns.map((k) => `${a}.${quoteIdent(k)} = ${b}.${quoteIdent(k)}`).join(' and ');
  const clockLookup = (floor: string) => `
    select greatest(c.max_hlc, ${floor}), c.vclock, s.region into v_max, v_seen, v_region
      from ${META_SCHEMA}.node_clock c, ${META_SCHEMA}.settings s where c.id = 1 and s.id = 1;`;
  return `${ROW_TEXT_DDL}
create or replace function ${before}() returns trigger language plpgsql as $$
declare
  v_max text;
  v_seen jsonb;
  v_region text;
  v_hlc text;
  v_stamp text;
  ${CLOCK_VARIABLES}
begin
  if pg_replication_origin_session_is_setup() then return null; end if;
  select c.max_hlc, c.vclock, s.region into v_max, v_seen, v_region
    from ${META_SCHEMA}.node_clock c, ${META_SCHEMA}.settings s where c.id = 1 and s.id = 1;
  -- Above what this region applied and above this transaction's previous stamp here.${nextHlc(`greatest(coalesce(v_max, ''), split_part(coalesce(current_setting(${setting}, true), ''), ' ', 1))`)}
  v_stamp := set_config(${setting}, v_hlc || ' ' || v_region || ' ' || v_seen::text, true);
  v_lsn := pg_logical_emit_message(true, '${STATEMENT_STAMP_PREFIX}', json_build_object('table', ${tbl}, 'hlc', v_hlc, 'region', v_region, 'seen', v_seen, 'counterColumns', ${counterList(cfg)})::text);
  return null;
end $$;
drop trigger if exists zz_regionsync_stamp_statement on ${quoteTable(t.name)};
create trigger zz_regionsync_stamp_statement before insert on ${quoteTable(t.name)} for each statement execute function ${before}();
drop trigger if exists zz_regionsync_stamp_versions on ${quoteTable(t.name)};
drop function if exists ${META_SCHEMA}.${quoteIdent(`stamp_after_${base}`)}();
create or replace function ${after}() returns trigger language plpgsql as $$
declare
  ${STAMP_VARIABLES}
  v_rare text[];
  r record;
begin
  if pg_replication_origin_session_is_setup() then return null; end if;
  v_set := coalesce(current_setting(${setting}, true), '');
  -- No statement stamp: the statement trigger did not fire (disabled by hand); the rows
  -- travel versioned by their commit, as any row written without the triggers.
  if v_set = '' then return null; end if;
  v_hlc := split_part(v_set, ' ', 1);
  v_region := split_part(v_set, ' ', 2);
  v_seen := nullif(substr(v_set, length(v_hlc) + length(v_region) + 3), '')::jsonb;
  -- The statement's stamp for every new key. The insert of its version is also the per-key
  -- lock: apply writing a tombstone for one of these keys waits on the unique index until
  -- this transaction ends (and then retries, seeing the row), or this insert waits for
  -- apply's and finds its version below.
  -- (The keys it could not place, by a set difference: a large statement stays linear.)
  with placed as (
    insert into ${META_SCHEMA}.row_versions (table_name, pk, hlc, region, counters, seen)
    select ${tbl}, ${pkExpr('n', t.keyColumns)}, v_hlc, v_region, ${newKeyCounters}, v_seen from regionsync_new n
    on conflict do nothing returning pk)
  select array_agg(k) into v_rare from (select ${pkExpr('n', t.keyColumns)} as k from regionsync_new n except all select pk from placed) d;
  if v_rare is null then return null; end if;
  -- Keys that had a version: stamped again, as inserts, above it. The row is read as it is
  -- now (a user's AFTER ROW trigger may have changed or deleted it since).
  for r in select x.*, ${rowText('x')} as regionsync_values from ${quoteTable(t.name)} x join regionsync_new n on ${sameKey('x', 'n')}
      where ${pkExpr('n', t.keyColumns)} = any(v_rare) loop
    v_pk := ${pkExpr('r', t.keyColumns)};${clockLookup('split_part(v_set, \' \', 1)')}
    select * into v_old from ${META_SCHEMA}.row_versions where table_name = ${tbl} and pk = v_pk for update;${nextHlc("greatest(coalesce(v_old.hlc, ''), coalesce(v_max, ''))")}
    v_counters := coalesce(v_old.counters, '{}'::jsonb);
    v_deleted_at := v_old.deleted_at;${counterUpdates("'INSERT'", 'r', 'r')}${saveVersion('false')}
    v_lsn := pg_logical_emit_message(true, '${LATE_VERSION_PREFIX}', jsonb_build_object(${versionFields('false')},
      'key', ${textObject(t.keyColumns)}, 'values', r.regionsync_values)::text);
  end loop;
  return null;
end $$;
drop trigger if exists zz_regionsync_stamp_inserted on ${quoteTable(t.name)};
create trigger zz_regionsync_stamp_inserted after insert on ${quoteTable(t.name)} referencing new table as regionsync_new for each statement execute function ${after}();
create or replace function ${fn}() returns trigger language plpgsql as $$
declare
  ${STAMP_VARIABLES}
  v_op text := TG_OP;
  v_old_pk text;
begin
  if pg_replication_origin_session_is_setup() then
    if TG_OP = 'DELETE' then return OLD; end if;
    return NEW;
  end if;
  if TG_OP = 'DELETE' then v_pk := ${pkExpr('OLD', t.keyColumns)}; else v_pk := ${pkExpr('NEW', t.keyColumns)}; end if;
  v_set := coalesce(current_setting(${setting}, true), '');
  -- The clock, what this region has applied and the region name in one lookup; the floor
  -- includes this transaction's last statement stamp on the table.${clockLookup("split_part(v_set, ' ', 1)")}
  if TG_OP = 'UPDATE' then
    v_old_pk := ${pkExpr('OLD', t.keyColumns)};
    -- An UPDATE of the primary key (or one moving a row between partitions, whose key holds
    -- the partition key) ends the old key's row: it gets a tombstone, sent before the row,
    -- and the new key's version counts its counters as an insert. Without it the other
    -- regions kept the row under its old key as well.
    if v_old_pk <> v_pk then
      select * into v_old from ${META_SCHEMA}.row_versions where table_name = ${tbl} and pk = v_old_pk for update;${nextHlc("greatest(coalesce(v_old.hlc, ''), coalesce(v_max, ''))")}
      v_counters := coalesce(v_old.counters, '{}'::jsonb);
      v_deleted_at := jsonb_build_object('hlc', v_hlc, 'region', v_region);${saveVersion('true', 'v_old_pk')}
      v_lsn := pg_logical_emit_message(true, '${ROW_VERSION_PREFIX}', jsonb_build_object(${versionFields('true', 'v_old_pk')})::text);
      v_op := 'INSERT';
      v_max := greatest(v_max, v_hlc);
    end if;
  end if;
  select * into v_old from ${META_SCHEMA}.row_versions where table_name = ${tbl} and pk = v_pk for update;${nextHlc("greatest(coalesce(v_old.hlc, ''), coalesce(v_max, ''))")}
  v_counters := coalesce(v_old.counters, '{}'::jsonb);
  v_deleted_at := v_old.deleted_at;
  if TG_OP = 'DELETE' then
    v_deleted_at := jsonb_build_object('hlc', v_hlc, 'region', v_region);
  else${counterUpdates('v_op', 'NEW', 'OLD')}
  end if;${saveVersion("TG_OP = 'DELETE'")}
  -- A row under a new key carries its values: pgoutput sends an unchanged TOASTed value as
  -- "unchanged", and the other regions have no row under that key to keep it from.
  v_lsn := pg_logical_emit_message(true, '${ROW_VERSION_PREFIX}', (jsonb_build_object(${versionFields("TG_OP = 'DELETE'")})
    || case when v_old_pk is not null and v_old_pk <> v_pk then jsonb_build_object('values', ${rowText('NEW')}) else '{}'::jsonb end)::text);
  if TG_OP = 'DELETE' then return OLD; end if;
  return NEW;
end $$;
drop trigger if exists zz_regionsync_stamp on ${quoteTable(t.name)};
create trigger zz_regionsync_stamp before update or delete on ${quoteTable(t.name)} for each row execute function ${fn}();
`;
}

const counterList = (cfg: StampTableConfig) => `json_build_array(${cfg.counterColumns.map(quoteLiteral).join(', ')})`;
