// Turns the pgoutput message stream into source transactions ready to publish, pure and
// unit-testable: no I/O here. Rows are collected per (table, primary key) so a row touched
// several times in one transaction travels once, in its final state, with the version the
// stamp trigger gave it.
import type { RowChange, VectorClock } from '@regionsync/protocol';
import { BASE_CONTRIBUTION } from '@regionsync/conflict';
import { META_SCHEMA, PK_SEPARATOR, isRegionsyncOrigin, type TableName } from './sql-names.js';

/** Prefix of the transactional logical message carrying an INSERT statement's stamp (setup.ts). */
export const STATEMENT_STAMP_PREFIX = 'regionsync-stamp';
/** Prefix of the transactional logical message carrying one row's version, just before the row. */
export const ROW_VERSION_PREFIX = 'regionsync-version';
/**
 * Prefix of the message carrying the version of a row an INSERT statement wrote over a key
 * that had one (a tombstone), sent after the statement's rows, with the row's key and
 * current values as text.
 */
export const LATE_VERSION_PREFIX = 'regionsync-late-version';

/** An INSERT statement's stamp: the version of every new key the statement inserts. */
interface StatementStamp {
  hlc: string;
  region: string;
  seen: VectorClock | null;
  counterColumns: string[];
  shared?: StampedVersion;
}

export interface PgColumn {
  name: string;
  typeOid?: number;
}
export interface PgRelation {
  schema: string;
  name: string;
  columns: PgColumn[];
  keyColumns: string[];
}

/** Subset of pg-logical-replication's pgoutput messages we consume, values in text format. */
export type PgMessage =
  // commitTime: microseconds since the Unix epoch (see unixMicrosToIso).
  | { tag: 'begin'; commitLsn: string | null; commitTime: bigint; xid: number }
  | { tag: 'commit'; commitLsn: string | null; commitEndLsn: string | null; commitTime: bigint }
  | { tag: 'origin'; originName: string }
  | { tag: 'relation'; schema: string; name: string }
  | { tag: 'insert'; relation: PgRelation; new: Record<string, string | null | undefined> }
  | { tag: 'update'; relation: PgRelation; key: Record<string, string | null | undefined> | null; old: Record<string, string | null | undefined> | null; new: Record<string, string | null | undefined> }
  | { tag: 'delete'; relation: PgRelation; key: Record<string, string | null | undefined> | null; old: Record<string, string | null | undefined> | null }
  | { tag: 'truncate'; relations: PgRelation[] }
  | { tag: 'message'; prefix: string; content?: Uint8Array; transactional?: boolean }
  | { tag: 'type' };

export interface StampedVersion {
  hlc: string;
  region: string;
  /** The row's values as text, sent when its key changed (see row()). */
  values?: Record<string, string | null>;
  counters: Record<string, Record<string, { total: string }>> | null;
  seen: VectorClock | null;
  redacted: string[] | null;
}

export interface AssembledTransaction {
  xid: number;
  commitLsn: string;
  commitEndLsn: string;
  commitTime: string; // ISO 8601 with microseconds
  fromRegionsync: boolean; // applied by a regionsync origin: never forwarded (no echo)
  rows: RowChange[];
  tables: Set<TableName>;
  vclock: VectorClock;
  maxHlc: string;
  truncated: TableName[];
  /** Column layout (`name:typeOid,…`) of every table in `rows`. */
  schemas: Record<TableName, string>;
  /** Index of the final chunk; earlier chunks (0..n-1) were already handed to the chunk sink. */
  finalChunkIndex: number;
}

export type ChunkSink = (rows: RowChange[], meta: { commitLsn: string; xid: number; vclock: VectorClock; maxHlc: string; chunkIndex: number; schemas: Record<TableName, string> }) => void;

const toText = (v: string | null | undefined): string | null => (v === undefined ? null : v);

/**
 * pg-logical-replication's pgoutput parser already moves times from PostgreSQL's epoch
 * (2000-01-01) to the Unix epoch (its readTime adds 946,684,800 s): these are Unix
 * microseconds. Adding the offset again put every applied commit 30 years in the future,
 * which made the lag gauge read 0 whatever the real lag.
 */
export function unixMicrosToIso(micros: bigint): string {
  // A double holds Unix microseconds exactly until the year 2255; BigInt division cost
  // more than the rest of a single-row transaction's assembly.
  const us = Number(micros);
  const rest = us % 1000;
  const iso = new Date((us - rest) / 1000).toISOString(); // ...sss Z
  return `${iso.slice(0, 23)}${String(rest).padStart(3, '0')}Z`;
}

export class TransactionAssembler {
  private current: {
    begin: { commitLsn: string; xid: number };
    origin?: string;
    rows: Map<string, RowChange>;
    pending: Map<string, StampedVersion>;
    statementStamps: Map<TableName, StatementStamp>;
    seenMerged?: VectorClock;
    tables: Set<TableName>;
    vclock: VectorClock;
    maxHlc: string;
    chunkIndex: number;
    truncated: TableName[];
    schemas: Record<TableName, string>;
  } | null = null;

  constructor(
    private readonly localRegion: string,
    private readonly replicated: ReadonlySet<TableName>,
    /** Called when the open transaction holds `chunkRows` rows, so huge transactions stream out. */
    private readonly chunkRows: number,
    private readonly onChunk?: ChunkSink,
    /**
     * Primary-key columns per table from the catalogue. pgoutput flags the replica
     * identity's columns as key columns, which under REPLICA IDENTITY FULL (set on
     * home-region tables to see a moved row's old home) is every column: taking those as
     * the key would put PII into message keys. Falls back to the relation's flags.
     */
    private readonly keyColumnsOf?: (table: TableName) => readonly string[] | undefined,
  ) {}

  get inTransaction(): boolean {
    return this.current !== null;
  }

  get chunksEmitted(): number {
    return this.current?.chunkIndex ?? 0;
  }

  /** Feed one message; returns the finished transaction at its commit. */
  push(msg: PgMessage): AssembledTransaction | undefined {
    switch (msg.tag) {
      case 'begin':
        this.current = { begin: { commitLsn: msg.commitLsn ?? '0/0', xid: msg.xid }, rows: new Map(), pending: new Map(), statementStamps: new Map(), tables: new Set(), vclock: {}, maxHlc: '', chunkIndex: 0, truncated: [], schemas: {} };
        return undefined;
      case 'origin':
        if (this.current) this.current.origin = msg.originName;
        return undefined;
      case 'insert':
      case 'update':
      case 'delete':
        this.row(msg);
        return undefined;
      case 'message':
        if (!this.current || isRegionsyncOrigin(this.current.origin)) return undefined;
        if (msg.prefix === ROW_VERSION_PREFIX) this.rowVersion(msg.content);
        else if (msg.prefix === STATEMENT_STAMP_PREFIX) this.statementStamp(msg.content);
        else if (msg.prefix === LATE_VERSION_PREFIX) this.lateVersion(msg.content);
        return undefined;
      case 'truncate':
        if (this.current) for (const r of msg.relations) this.current.truncated.push(`${r.schema}.${r.name}`);
        return undefined;
      case 'commit': {
        const c = this.current;
        this.current = null;
        if (!c) return undefined;
        return {
          xid: c.begin.xid,
          commitLsn: msg.commitLsn ?? c.begin.commitLsn,
          commitEndLsn: msg.commitEndLsn ?? msg.commitLsn ?? c.begin.commitLsn,
          commitTime: unixMicrosToIso(BigInt(msg.commitTime as bigint)),
          fromRegionsync: isRegionsyncOrigin(c.origin),
          rows: [...c.rows.values()],
          tables: c.tables,
          vclock: c.vclock,
          maxHlc: c.maxHlc,
          truncated: c.truncated,
          schemas: c.schemas,
          finalChunkIndex: c.chunkIndex,
        };
      }
      default:
        return undefined;
    }
  }

  private rowVersion(content: Uint8Array | undefined): void {
    const o = parseJsonObject(content);
    const v = o && stampedVersion(o);
    if (v) this.current!.pending.set(`${String(o.table)}${PK_SEPARATOR}${String(o.pk)}`, v);
  }

  /**
   * The version of a row its INSERT statement wrote over a key that had one, sent after
   * the statement's rows. The row still in this chunk takes it as is (its values came from
   * the WAL); one that already left in an earlier chunk travels again, with the message's
   * values, and the receivers' merge keeps the later version.
   */
  private lateVersion(content: Uint8Array | undefined): void {
    const c = this.current!;
    const o = parseJsonObject(content);
    const stamp = o && stampedVersion(o);
    if (!stamp || !isTextRecord(o.key) || !isTextRecord(o.values)) return;
    const table = String(o.table);
    if (!this.replicated.has(table)) return;
    const rowKey = `${table}${PK_SEPARATOR}${String(o.pk)}`;
    const version = { hlc: stamp.hlc, region: stamp.region };
    let change = c.rows.get(rowKey);
    if (change) {
      change.version = version;
      delete change.counters;
      if (change.values && stamp.redacted?.length) {
        for (const col of stamp.redacted) delete change.values[col];
        change.unchangedToast = [...new Set([...(change.unchangedToast ?? []), ...stamp.redacted])];
      }
    } else {
      const values: Record<string, string | null> = {};
      const held = stamp.redacted?.length ? new Set(stamp.redacted) : undefined;
      for (const [col, v] of Object.entries(o.values)) if (!held?.has(col)) values[col] = v;
      change = { table, op: 'insert', key: o.key, version, values };
      if (held) change.unchangedToast = [...held];
    }
    this.place(c, table, rowKey, change, stamp);
  }

  private statementStamp(content: Uint8Array | undefined): void {
    const o = parseJsonObject(content);
    if (!o || typeof o.table !== 'string' || typeof o.hlc !== 'string' || typeof o.region !== 'string') return;
    const seen = o.seen && typeof o.seen === 'object' ? (o.seen as VectorClock) : null;
    const counterColumns = Array.isArray(o.counterColumns) ? o.counterColumns.filter((x): x is string => typeof x === 'string') : [];
    this.current!.statementStamps.set(o.table, { hlc: o.hlc, region: o.region, seen, counterColumns });
  }

  private row(msg: Extract<PgMessage, { tag: 'insert' | 'update' | 'delete' }>): void {
    const c = this.current;
    if (!c || isRegionsyncOrigin(c.origin)) return;
    const table = `${msg.relation.schema}.${msg.relation.name}`;
    // WAL written while row_versions was still published (before an upgrade) carries the
    // versions as records of that table, just before their rows.
    if (table === `${META_SCHEMA}.row_versions`) {
      if (msg.tag === 'delete') {
        // Only the stamp trigger's placeholder is ever deleted: no version to carry.
        const k = msg.old ?? msg.key;
        if (k) c.pending.delete(`${k.table_name}${PK_SEPARATOR}${k.pk}`);
        return;
      }
      const t = msg.new;
      if (!t) return;
      c.pending.set(`${t.table_name}${PK_SEPARATOR}${t.pk}`, {
        hlc: String(t.hlc),
        region: String(t.region),
        counters: t.counters ? (JSON.parse(t.counters) as StampedVersion['counters']) : null,
        seen: t.seen ? (JSON.parse(t.seen) as VectorClock) : null,
        redacted: t.redacted ? parsePgTextArray(t.redacted) : null,
      });
      return;
    }
    if (!this.replicated.has(table)) return;
    const catalogued = this.keyColumnsOf?.(table);
    const keyCols = catalogued !== undefined && catalogued.length > 0 ? catalogued : msg.relation.keyColumns;
    const source = msg.tag === 'delete' ? msg.old ?? msg.key ?? {} : msg.new;
    const key: Record<string, string | null> = {};
    for (const k of keyCols) key[k] = toText(source[k]);
    const pk = keyCols.length === 1 ? (key[keyCols[0]!] ?? '') : keyCols.map((k) => key[k] ?? '').join(PK_SEPARATOR);
    // An UPDATE of the primary key ends the row under its old key (the stamp trigger sent
    // that key's tombstone first): it travels as that key's delete, then the new key's row.
    if (msg.tag === 'update') {
      const before = msg.key ?? msg.old;
      if (before && keyCols.some((k) => toText(before[k]) !== key[k])) this.row({ tag: 'delete', relation: msg.relation, key: msg.key, old: msg.old });
    }
    const rowKey = `${table}${PK_SEPARATOR}${pk}`;
    let stamp = c.pending.get(rowKey);
    if (stamp) c.pending.delete(rowKey);
    else if (msg.tag === 'insert') stamp = statementVersion(c.statementStamps.get(table), msg.new);
    // A row without a stamp was written while the trigger was missing (e.g. before setup);
    // it still travels, versioned by this commit, so nothing is silently dropped.
    const version = stamp ? { hlc: stamp.hlc, region: stamp.region } : { hlc: c.maxHlc || '000000000000000.000000', region: this.localRegion };
    const change: RowChange = { table, op: msg.tag, key, version };
    // The old tuple (REPLICA IDENTITY FULL) lets the residency check see a row whose home
    // moved, and where a deleted row lived; it is local knowledge only, never on the wire.
    const oldTuple = msg.tag === 'insert' ? null : msg.old;
    if (oldTuple) {
      const old: Record<string, string | null> = {};
      for (const [k, v] of Object.entries(oldTuple)) if (v !== undefined) old[k] = v;
      OLD_VALUES.set(change, old);
    }
    if (msg.tag !== 'delete') {
      const values: Record<string, string | null> = {};
      let toast: string[] | undefined;
      const held = stamp?.redacted?.length ? new Set(stamp.redacted) : undefined;
      for (const col of msg.relation.columns) {
        // Under a new key an unchanged TOAST value is taken from the version message.
        let v = msg.new[col.name];
        if (v === undefined && stamp?.values && col.name in stamp.values) v = stamp.values[col.name];
        // Unchanged TOAST, or a value this region only holds redacted: the receiver keeps its own.
        if (v === undefined || held?.has(col.name)) (toast ??= []).push(col.name);
        else values[col.name] = v;
      }
      change.values = values;
      if (toast) change.unchangedToast = toast;
    }
    c.schemas[table] ??= columnLayout(msg.relation);
    this.place(c, table, rowKey, change, stamp);
  }

  // Counters, clocks and chunking of a row change, the last write of its key so far.
  private place(c: NonNullable<TransactionAssembler['current']>, table: TableName, rowKey: string, change: RowChange, stamp: StampedVersion | undefined): void {
    const version = change.version;
    const mine = stamp?.counters;
    if (mine) {
      const counters: Record<string, { region: string; total: string; base?: string }> = {};
      for (const [col, byRegion] of Object.entries(mine)) {
        const own = byRegion[this.localRegion];
        const base = byRegion[BASE_CONTRIBUTION];
        if (own) counters[col] = { region: this.localRegion, total: own.total, ...(base ? { base: base.total } : {}) };
      }
      if (Object.keys(counters).length > 0) change.counters = counters;
    }
    // The rows of one statement share their stamp's clock: merged once.
    if (stamp?.seen && stamp.seen !== c.seenMerged) {
      for (const [r, h] of Object.entries(stamp.seen)) if (!c.vclock[r] || c.vclock[r]! < h) c.vclock[r] = h;
      c.seenMerged = stamp.seen;
    }
    if (version.hlc > c.maxHlc) c.maxHlc = version.hlc;
    if (!c.vclock[this.localRegion] || c.vclock[this.localRegion]! < version.hlc) c.vclock[this.localRegion] = version.hlc;
    c.tables.add(table);
    c.rows.delete(rowKey); // re-insert so Map order follows the last write
    c.rows.set(rowKey, change);
    if (this.onChunk && c.rows.size >= this.chunkRows) {
      this.onChunk([...c.rows.values()], { commitLsn: c.begin.commitLsn, xid: c.begin.xid, vclock: { ...c.vclock }, maxHlc: c.maxHlc, chunkIndex: c.chunkIndex, schemas: { ...c.schemas } });
      c.rows.clear();
      c.chunkIndex += 1;
    }
  }
}

function stampedVersion(o: Record<string, unknown>): StampedVersion | undefined {
  if (typeof o.table !== 'string' || typeof o.pk !== 'string' || typeof o.hlc !== 'string' || typeof o.region !== 'string') return undefined;
  return {
    hlc: o.hlc,
    region: o.region,
    counters: o.counters && typeof o.counters === 'object' ? (o.counters as StampedVersion['counters']) : null,
    seen: o.seen && typeof o.seen === 'object' ? (o.seen as VectorClock) : null,
    redacted: Array.isArray(o.redacted) ? o.redacted.filter((x): x is string => typeof x === 'string') : null,
    ...(isTextRecord(o.values) ? { values: o.values } : {}),
  };
}

const isTextRecord = (v: unknown): v is Record<string, string | null> =>
  !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => x === null || typeof x === 'string');

function parseJsonObject(content: Uint8Array | undefined): Record<string, unknown> | undefined {
  if (!content) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A new key's version under its statement's stamp: counters contribute the inserted values. */
function statementVersion(st: StatementStamp | undefined, values: Record<string, string | null | undefined>): StampedVersion | undefined {
  if (!st) return undefined;
  // Without counters every row of the statement has the same version: one object for all.
  if (st.counterColumns.length === 0) return (st.shared ??= { hlc: st.hlc, region: st.region, counters: null, seen: st.seen, redacted: null });
  let counters: StampedVersion['counters'] = null;
  for (const col of st.counterColumns) (counters ??= {})[col] = { [st.region]: { total: values[col] ?? '0' } };
  return { hlc: st.hlc, region: st.region, counters, seen: st.seen, redacted: null };
}

const OLD_VALUES = new WeakMap<RowChange, Record<string, string | null>>();

/** Values the row had before an update or delete, when the table's replica identity carries them. */
export function oldValuesOf(row: RowChange): Record<string, string | null> | undefined {
  return OLD_VALUES.get(row);
}

/** Parses a PostgreSQL text[] literal of plain identifiers, e.g. `{email,full_name}`. */
export function parsePgTextArray(text: string): string[] {
  const inner = text.replace(/^\{|\}$/g, '');
  if (inner === '') return [];
  return inner.split(',').map((s) => s.replace(/^"|"$/g, '').replace(/\\(.)/g, '$1'));
}

/** `name:typeOid,…` in column order: equal layouts mean rows can be applied as they are. */
export function columnLayout(relation: { columns: PgColumn[] }): string {
  return relation.columns.map((c) => `${c.name}:${c.typeOid ?? 0}`).join(',');
}
