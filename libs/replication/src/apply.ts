import pg from 'pg';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { TableStrategy } from '@regionsync/conflict';
import { compareLsn, RegionsyncError, type ChangeBody, type RowChange } from '@regionsync/protocol';
import type { ReplicationMetrics } from './metrics.js';
import { applyTable } from './apply-table.js';
import { errInfo } from './err-info.js';
import { TableSql } from './row-sql.js';
import { TxPipeline } from './tx-pipeline.js';
import { ApplySessions, type SourceSession } from './apply-sessions.js';
import { adaptToColumns, insertsOfDistinctKeys, rowKey } from './apply-rows.js';
import { CONTENTION_ATTEMPTS, contentionPauseMs, sleep } from './retry.js';
import type { TableConfig } from './setup.js';
import { loadTableInfo } from './table-info.js';
import { SchemaGuard } from './schema-guard.js';
import { META_SCHEMA, qualify, quoteLiteral, quoteTable } from './sql-names.js';

// A batch of many large messages is split into transactions of about this many rows.
const MAX_ROWS_PER_TRANSACTION = 5_000;
// Up to this many rows, an apply transaction's statements may run on cached generic plans:
// planning every statement cost the apply backend about 90 us per single-row transaction
// (a quarter of its CPU at 1,000 commits/s), while larger batches keep custom plans (with
// generic ones, draining a 200,000-row load took 2-4 s after the last commit instead of 1).
const SMALL_TRANSACTION_ROWS = 32;

// A group of messages that lost this many attempts to local writes is split in two.
const SPLIT_AFTER_ATTEMPTS = 3;

const messageKey = (b: ChangeBody) => `${b.commitLsn}/${b.chunk.index}`;

/** Defence in depth: may this region hold this row? Refused rows are skipped (and audited by the caller). */
export type IngressFilter = (row: RowChange, sourceRegion: string) => { accept: true } | { accept: false; reason: string };

export interface ApplyOptions {
  region: string;
  connectionString: string;
  tables: TableConfig[];
  log: Logger;
  metrics?: ReplicationMetrics;
  ingress?: IngressFilter;
  onRefused?: (row: RowChange, sourceRegion: string, reason: string) => void;
  /** Largest lead of a source's HLC over the local clock before its changes are refused. */
  maxClockSkewMs?: number;
  /** Registry for the per-table pause gauge (schema mismatch). */
  registry?: Registry;
  /** Test hook (documented): the local physical clock, defaults to Date.now. */
  now?: () => number;
  /** Records refused rows inside the apply transaction, so the audit commits with it. */
  auditInTx?: (db: pg.ClientBase, refused: { row: RowChange; sourceRegion: string; reason: string }[]) => Promise<void>;
  /**
   * Tables locked in SHARE mode at the start of every apply transaction, before its
   * snapshot: a writer of them in EXCLUSIVE mode (erasure) waits for applies in flight and
   * is seen whole by the ones after it.
   */
  shareLockTables?: string[];
}

/**
 * Clean-up of applied_messages, run on the apply session every 5,000 applied messages:
 * records older than a day only guard against replays a re-merge would absorb anyway. It
 * reaches them through the applied_at index, at most 10,000 per run, so its cost follows
 * what expired since the last run (not the table's size) and a backlog after a long stop
 * is worked off over several runs instead of in one long stall of the apply path.
 */
export const APPLIED_MESSAGES_GC_SQL = `delete from ${META_SCHEMA}.applied_messages where ctid = any(array(
  select ctid from ${META_SCHEMA}.applied_messages where applied_at < now() - interval '24 hours' order by applied_at limit 10000))`;

export type ApplyOutcome = 'applied' | 'skipped';

/**
 * Applies change messages exactly once: one local transaction per message (or per run of
 * consecutive messages of one source, applyBatch) under the source's replication origin,
 * with origin progress and the applied_messages records committed in the same transaction
 * (progress set from a transaction's last chunk), so a redelivered message is recognised
 * and skipped.
 */
export class Applier {
  private readonly sessions: ApplySessions;
  private tables = new Map<string, { sql: TableSql; strategy: TableStrategy; stale?: boolean }>();
  readonly guard: SchemaGuard;
  // apply() and resumePaused() share the per-source sessions: one at a time.
  private lock: Promise<unknown> = Promise.resolve();

  // One statement each (the pipeline maps one result to each); they travel in one round
  // trip with the first loads, and LOCK runs before the first query, so before the snapshot.
  private readonly beginSql: string[];

  constructor(private readonly o: ApplyOptions) {
    this.sessions = new ApplySessions(o);
    const locks = o.shareLockTables ?? [];
    this.beginSql = ['begin isolation level repeatable read', ...(locks.length > 0 ? [`lock table ${locks.map(quoteTable).join(', ')} in share mode`] : [])];
    this.guard = new SchemaGuard(o.log, o.registry, async (table) => {
      const t = this.tables.get(table);
      if (t) t.stale = true; // reload the table's column list before its next use
    });
  }

  async init(db: pg.ClientBase): Promise<void> {
    for (const t of this.o.tables) {
      const info = await loadTableInfo(db, t.name);
      this.tables.set(info.name, { sql: new TableSql(info), strategy: { kind: t.strategy, ...(t.counterColumns.length ? { counterColumns: t.counterColumns } : {}) } });
    }
    await this.guard.init(db);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async tableFor(db: pg.ClientBase, table: string): Promise<{ sql: TableSql; strategy: TableStrategy } | undefined> {
    const t = this.tables.get(table);
    if (t?.stale) {
      t.sql = new TableSql(await loadTableInfo(db, table));
      t.stale = false;
    }
    return t;
  }

  /**
   * Replays rows parked by a schema mismatch once this region's layout of the table changed
   * (its DDL was applied here): by column name, under each source's origin, then resumes.
   */
  resumePaused(): Promise<string[]> {
    return this.serial(async () => {
      if (this.guard.paused.size === 0) return [];
      const done: string[] = [];
      for (const table of [...this.guard.paused.keys()]) {
        const probe = await this.sessions.anyClient();
        if (!probe) return done;
        if (!(await this.guard.resumable(probe)).includes(table)) continue;
        for (const group of await this.guard.parkedRows(probe, table)) {
          const s = await this.sessions.get(group.source);
          try {
            await s.client.query('begin');
            const t = this.tables.get(table)!;
            t.stale = true;
            const fresh = (await this.tableFor(s.client, table))!;
            const tx = new TxPipeline(s.client);
            await applyTable(tx, fresh.sql, fresh.strategy, group.rows.map((r) => adaptToColumns(r, fresh.sql)), group.rows.map(() => group.vclock), this.o);
            await tx.flush();
            await this.guard.clearParked(s.client, table, group.source);
            await s.client.query('commit');
          } catch (err) {
            await s.client.query('rollback').catch(() => undefined);
            this.o.log.error({ table, source: group.source, err: { message: err instanceof Error ? err.message : String(err) } }, 'replaying parked rows failed; the table stays paused');
            throw err;
          }
        }
        this.guard.resumed(table);
        done.push(table);
      }
      return done;
    });
  }

  apply(body: ChangeBody): Promise<ApplyOutcome> {
    return this.serial(async () => ((await this.applyBatchNow([body])) > 0 ? 'applied' : 'skipped'));
  }

  /**
   * Applies consecutive messages with as few local transactions as possible: the messages of
   * each source (in their order) become one transaction under that source's origin
   * (rows merged per table, one applied_messages insert, origin progress set to the highest
   * last-chunk LSN among them, committed with the rows). Resolves with the number of messages
   * applied (the others were already applied). If a message is refused (wrong destination,
   * clock skew), the messages before it are applied first, then the error is thrown.
   */
  applyBatch(bodies: ChangeBody[]): Promise<number> {
    return this.serial(() => this.applyBatchNow(bodies));
  }

  private async applyBatchNow(bodies: ChangeBody[]): Promise<number> {
    let refused: unknown;
    let ok = bodies.length;
    for (const [i, body] of bodies.entries()) {
      try {
        if (body.destination !== this.o.region) throw new RegionsyncError('RS_REPLICATION_APPLY', `message for ${body.destination} reached ${this.o.region}`, { retryable: false });
        this.checkSkew(body);
      } catch (err) {
        refused = err;
        ok = i;
        break;
      }
    }
    let applied = 0;
    // Per source, in order, bounded in rows so one transaction stays moderate. Sources are
    // independent streams (own origin, own progress; merges commute), so interleaved
    // messages of two sources still make two large transactions, not many small ones.
    const bySource = new Map<string, ChangeBody[]>();
    for (const body of bodies.slice(0, ok)) {
      const list = bySource.get(body.sourceRegion);
      if (list) list.push(body);
      else bySource.set(body.sourceRegion, [body]);
    }
    for (const list of bySource.values()) {
      let group: ChangeBody[] = [];
      let groupRows = 0;
      for (const body of list) {
        if (group.length > 0 && groupRows + body.rows.length > MAX_ROWS_PER_TRANSACTION) {
          applied += await this.applyGroup(group);
          group = [];
          groupRows = 0;
        }
        group.push(body);
        groupRows += body.rows.length;
      }
      if (group.length > 0) applied += await this.applyGroup(group);
    }
    if (refused !== undefined) throw refused;
    return applied;
  }

  private async applyGroup(group: ChangeBody[]): Promise<number> {
    const source = group[0]!.sourceRegion;
    const s = await this.sessions.get(source);
    const db = s.client;
    // Above the progress watermark nothing can have been applied yet; at or below it, the
    // applied_messages record decides (the merge rules make a re-apply harmless anyway).
    const unique = new Map<string, ChangeBody>();
    for (const b of group) if (!unique.has(messageKey(b))) unique.set(messageKey(b), b);
    const below = [...unique.values()].filter((b) => s.progress !== undefined && compareLsn(b.commitLsn, s.progress) <= 0);
    const done = below.length > 0 ? await this.appliedAmong(s, source, below) : new Set<string>();
    const todo = [...unique.values()].filter((b) => !done.has(messageKey(b)));
    if (todo.length < group.length) this.o.metrics?.transactionsSkipped.inc({ source }, group.length - todo.length);
    if (todo.length === 0) return 0;
    this.appliedSinceGc += todo.length;
    if (this.appliedSinceGc >= 5000) {
      this.appliedSinceGc = 0;
      // A failed clean-up must not stop apply, but it must not go unseen either: the table
      // would grow without bound. The statement carries no row values, so neither does its error.
      await db.query(APPLIED_MESSAGES_GC_SQL).catch((err: unknown) => this.o.log.warn({ source, err: errInfo(err) }, 'applied_messages clean-up failed; retried after the next 5,000 messages'));
    }
    return this.applyTransaction(s, todo);
  }

  // One local transaction for `todo` (messages of one source, in order, none applied yet),
  // retried while it loses to local writes; a group of several messages that keeps losing is
  // split in two, each half retried on its own.
  private async applyTransaction(s: SourceSession, todo: ChangeBody[]): Promise<number> {
    const db = s.client;
    const source = todo[0]!.sourceRegion;
    // Inserts of keys new here (the common case for remote inserts) go without loading the
    // local rows and versions: the whole transaction is one round trip instead of two. A key
    // that does have a row or a version fails the plain INSERT with a unique violation, and
    // the transaction is then applied the usual way (load, merge).
    let assumeAbsent = insertsOfDistinctKeys(todo);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.applyInTransaction(s, todo, assumeAbsent);
        return todo.length;
      } catch (err) {
        await db.query('rollback').catch(() => undefined);
        if (assumeAbsent && (err as { code?: string }).code === '23505') {
          assumeAbsent = false;
          this.o.metrics?.applyNewKeyFallbacks.inc({ source });
          continue;
        }
        // A local write committed under our feet (serialization failure, or a unique violation
        // of a key the snapshot did not have) or a deadlock with the stamp trigger: retried on
        // the same session, it is not a broken connection. The first retry goes at once, later
        // ones after a short jittered pause: retried at once, 20 attempts against a burst of
        // local writes to the same keys could all lose within a few milliseconds.
        const code = (err as { code?: string }).code;
        const contention = code === '40001' || code === '40P01' || code === '23505';
        if (contention && attempt + 1 >= SPLIT_AFTER_ATTEMPTS && todo.length > 1) {
          // Every key of every message is one more chance to meet a local write while the
          // transaction runs: under a steady local load on hot keys, groups of 26-51 messages
          // lost all 20 attempts (convergence e2e), where their halves go through.
          this.o.metrics?.applyRetries.inc({ source });
          const half = Math.ceil(todo.length / 2);
          return (await this.applyTransaction(s, todo.slice(0, half))) + (await this.applyTransaction(s, todo.slice(half)));
        }
        if (contention && attempt < CONTENTION_ATTEMPTS) {
          this.o.metrics?.applyRetries.inc({ source });
          if (attempt > 0) await sleep(contentionPauseMs(attempt));
          continue;
        }
        this.o.metrics?.applyErrors.inc({ source });
        // A broken session (connection lost, origin busy) is rebuilt on the next attempt; a
        // session that only kept losing to local writes is fine and kept (rolled back above).
        if (!contention) await this.sessions.drop(source, db);
        const what = todo.length === 1 ? `${todo[0]!.commitLsn} chunk ${todo[0]!.chunk.index}` : `${todo.length} messages ${todo[0]!.commitLsn} … ${todo[todo.length - 1]!.commitLsn}`;
        // The SQLSTATE only: a database message can quote row values, which never go to logs.
        throw new RegionsyncError('RS_REPLICATION_APPLY', `applying ${source} ${what} failed${code ? ` (SQLSTATE ${code})` : ''}`, { cause: err, retryable: true });
      }
    }
  }

  private async applyInTransaction(s: SourceSession, bodies: ChangeBody[], assumeAbsent: boolean): Promise<void> {
    const db = s.client;
    const source = bodies[0]!.sourceRegion;
    // Repeatable read: the merge reads rows and versions, then writes the merged state.
    // Under read committed a local write committed in between (the stamp trigger and the
    // row lock only serialise writers, not this read) was silently overwritten with the
    // stale merged state: lost local write, regressed version and counter contribution.
    // Here such a write makes ours fail with a serialization error, retried afresh.
    const tx = new TxPipeline(db);
    let rows = 0;
    for (const b of bodies) rows += b.rows.length;
    for (const st of this.beginSql) tx.queue(st);
    if (rows <= SMALL_TRANSACTION_ROWS) tx.queue('set local plan_cache_mode = auto');
    const changed = await this.applyRows(tx, bodies, assumeAbsent);
    // Only a last chunk records origin progress (the highest one here): a crash between
    // chunks re-applies the earlier ones, which the merge rules make harmless (same version
    // = no change). Progress, the applied_messages records and the clock commit with the
    // rows, in one statement sent together with the commit.
    let progress: ChangeBody | undefined;
    let maxHlc = bodies[0]!.hlc;
    for (const b of bodies) {
      if (b.chunk.last && (progress === undefined || compareLsn(b.commitLsn, progress.commitLsn) > 0)) progress = b;
      if (b.hlc > maxHlc) maxHlc = b.hlc;
    }
    const lsns = `array[${bodies.map((b) => quoteLiteral(b.commitLsn)).join(',')}]::pg_lsn[]`;
    const chunks = `array[${bodies.map((b) => String(Math.trunc(b.chunk.index))).join(',')}]::int[]`;
    const results = await tx.run(
      {
        sql: `with am as (insert into ${META_SCHEMA}.applied_messages (source, commit_lsn, chunk) select $1::text, l, c from unnest($2::pg_lsn[], $3::int[]) as u(l, c) on conflict do nothing),
       nc as (update ${META_SCHEMA}.node_clock set max_hlc = greatest(max_hlc, $4::text), vclock = vclock || jsonb_build_object($1::text, greatest(coalesce(vclock ->> $1::text, ''), $4::text)) where id = 1)
       select ${progress ? 'pg_replication_origin_xact_setup($5::pg_lsn, $6::timestamptz)' : '1'}`,
        args: [quoteLiteral(source), lsns, chunks, quoteLiteral(maxHlc), ...(progress ? [quoteLiteral(progress.commitLsn), quoteLiteral(progress.commitTime)] : [])],
      },
      'commit',
    );
    // COMMIT of a transaction that hit an error ends in ROLLBACK without raising one: a
    // message must never count as applied unless its transaction really committed.
    const committed = results.at(-1);
    if (committed?.command !== 'COMMIT') throw new RegionsyncError('RS_REPLICATION_APPLY', `applying ${source} ${bodies[0]!.commitLsn} (${bodies.length} messages): the transaction ended in ${committed?.command ?? 'nothing'}`, { retryable: true });
    if (progress && (s.progress === undefined || compareLsn(progress.commitLsn, s.progress) > 0)) s.progress = progress.commitLsn;
    this.o.metrics?.transactionsApplied.inc({ source }, bodies.length);
    this.o.metrics?.rowsApplied.inc({ source }, changed);
    const now = Date.now();
    if (this.o.metrics) for (const b of bodies) if (b.chunk.last) this.o.metrics.applyDelaySeconds.observe({ source }, Math.max(0, (now - Date.parse(b.commitTime)) / 1000));
    const lag = Math.max(0, (now - Date.parse(bodies[bodies.length - 1]!.commitTime)) / 1000);
    this.lagSeconds.set(source, lag);
    this.o.metrics?.lagSeconds.set({ source }, lag);
  }

  private appliedSinceGc = 0;

  private async appliedAmong(s: SourceSession, source: string, bodies: ChangeBody[]): Promise<Set<string>> {
    try {
      const r = await s.client.query<{ lsn: string; chunk: number }>(
        `select m.commit_lsn::text as lsn, m.chunk from ${META_SCHEMA}.applied_messages m join unnest($2::pg_lsn[], $3::int[]) as u(l, c) on m.commit_lsn = u.l and m.chunk = u.c where m.source = $1`,
        [source, bodies.map((b) => b.commitLsn), bodies.map((b) => b.chunk.index)],
      );
      const out = new Set<string>();
      // pg_lsn prints normalised (upper-case hex): match by comparing, not by text.
      for (const row of r.rows) for (const b of bodies) if (b.chunk.index === row.chunk && compareLsn(b.commitLsn, row.lsn) === 0) out.add(messageKey(b));
      return out;
    } catch (err) {
      await this.sessions.drop(source, s.client);
      throw new RegionsyncError('RS_REPLICATION_APPLY', `checking whether ${source} ${bodies[0]!.commitLsn} was applied failed`, { cause: err, retryable: true });
    }
  }

  /** Sources whose clock is currently beyond the allowed skew (for health and alarms). */
  readonly skewAlarms = new Map<string, number>();
  /** Commit-to-apply lag of the last transaction applied from each source (seconds); heartbeats carry it. */
  readonly lagSeconds = new Map<string, number>();

  // A change stamped further in the future than the allowed skew would win every later
  // conflict against writes made after it: refuse it (retryable, so it is retried in place
  // and applied once clocks agree) and alarm, rather than mis-order.
  private checkSkew(body: ChangeBody): void {
    const limit = this.o.maxClockSkewMs;
    if (limit === undefined) return;
    const aheadMs = Number(body.hlc.split('.')[0]) - (this.o.now ?? Date.now)();
    if (aheadMs > limit) {
      this.skewAlarms.set(body.sourceRegion, aheadMs);
      this.o.metrics?.clockSkewRefusals.inc({ source: body.sourceRegion });
      throw new RegionsyncError('RS_REPLICATION_CLOCK_SKEW', `changes from ${body.sourceRegion} are ${aheadMs} ms ahead of the local clock (limit ${limit} ms); refusing them until the clocks agree`, { retryable: true, details: { source: body.sourceRegion, aheadMs, limitMs: limit } });
    }
    this.skewAlarms.delete(body.sourceRegion);
  }

  // Rows of all messages (one source, in order), merged per table: one load/upsert/save per
  // table. A row touched again by a later message starts a new round (same transaction), so
  // every message's change to a row is written as it would be one message at a time.
  private async applyRows(tx: TxPipeline, bodies: ChangeBody[], assumeAbsent: boolean): Promise<number> {
    let changed = 0;
    let round: ChangeBody[] = [];
    let touched = new Set<string>();
    for (const body of bodies) {
      const keys = body.rows.map(rowKey);
      if (round.length > 0 && keys.some((k) => touched.has(k))) {
        changed += await this.applyRound(tx, round, assumeAbsent);
        round = [];
        touched = new Set();
      }
      round.push(body);
      for (const k of keys) touched.add(k);
    }
    if (round.length > 0) changed += await this.applyRound(tx, round, assumeAbsent);
    return changed;
  }

  private async applyRound(tx: TxPipeline, bodies: ChangeBody[], assumeAbsent: boolean): Promise<number> {
    const db = tx.db;
    const byTable = new Map<string, Map<ChangeBody, RowChange[]>>();
    const refused: { row: RowChange; sourceRegion: string; reason: string }[] = [];
    for (const body of bodies) {
      for (const row of body.rows) {
        const verdict = this.o.ingress?.(row, body.sourceRegion) ?? { accept: true as const };
        if (!verdict.accept) {
          refused.push({ row, sourceRegion: body.sourceRegion, reason: verdict.reason });
          this.o.onRefused?.(row, body.sourceRegion, verdict.reason);
          continue;
        }
        const t = qualify(row.table);
        let perBody = byTable.get(t);
        if (!perBody) byTable.set(t, (perBody = new Map()));
        const list = perBody.get(body);
        if (list) list.push(row);
        else perBody.set(body, [row]);
      }
    }
    // Statements issued on db directly must come after what is queued (at least the begin).
    if (refused.length > 0 && this.o.auditInTx) {
      await tx.flush();
      await this.o.auditInTx(db, refused);
    }
    let changed = 0;
    for (const [table, perBody] of byTable) {
      const t = await this.tableFor(db, table);
      if (!t) throw new RegionsyncError('RS_REPLICATION_APPLY', `table ${table} from ${bodies[0]!.sourceRegion} is not replicated here (configure it in every region)`, { retryable: true });
      const rows: RowChange[] = [];
      const vclocks: Record<string, string>[] = [];
      for (const [body, list] of perBody) {
        if ((await this.guard.verdict(db, table, body)) === 'park') {
          await tx.flush();
          await this.guard.park(db, body, table, list);
          continue;
        }
        for (const row of list) {
          rows.push(row);
          vclocks.push(body.vclock);
        }
      }
      if (rows.length > 0) changed += await applyTable(tx, t.sql, t.strategy, rows, vclocks, { ...this.o, insertAbsent: true, assumeAbsent });
    }
    return changed;
  }

  close(): Promise<void> {
    return this.sessions.close();
  }
}
