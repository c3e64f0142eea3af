import pg from 'pg';
import { LogicalReplicationService } from 'pg-logical-replication';
import { changesSubject, compareLsn, makeEnvelope, messageId, type ChangeBody, type RowChange, type VectorClock } from '@regionsync/protocol';
import { slotAckArgument } from './slot-ack.js';
import { TransactionAssembler, type AssembledTransaction, type PgMessage } from './assembler.js';
import { PUBLICATION, databaseOf, qualify, slotName, type TableName } from './sql-names.js';
import { initialCopy } from './snapshot.js';
import { recreateSlot, slotState } from './slot-recovery.js';
import { loadTableInfo } from './table-info.js';
import { TextPgoutputPlugin } from './text-pgoutput.js';
import { OriginGuard, type OriginFilter } from './origin-filter.js';
import { backoff, sleep } from './retry.js';
import { errInfo } from './err-info.js';
import type { CaptureOptions } from './capture-options.js';
import { RetryingPublisher } from './retrying-publisher.js';
import { guardClient } from './pg-guard.js';
import { idleHeartbeats } from './idle-heartbeat.js';

export { errInfo };
export type { CaptureOptions, ChangeCodec, ChangePublisher, EgressFilter } from './capture-options.js';

/** SQLSTATE object_in_use: START_REPLICATION on a slot another process streams. */
const SLOT_IN_USE = '55006';
/** Messages of the open transaction published but not yet confirmed before capture waits. */
const MAX_CHUNKS_IN_FLIGHT = 16;
const DEFAULT_MAX_PENDING_ROWS = 20_000;
/**
 * Slot acknowledgements are sent at most this often (the newest confirmed position each
 * time, and at once when draining): one standby status per transaction cost a syscall per
 * commit on a busy source, and the slot position only bounds retained WAL and restart.
 */
const ACK_INTERVAL_MS = 100;
/**
 * While capture waits for the bus (backpressure during a partition) it stops reading the
 * stream, so the server's keepalive requests go unread; a standby status this often keeps
 * the walsender from timing out (wal_sender_timeout, 60 s by default) and killing the stream.
 */
const STANDBY_STATUS_MS = 10_000;
/** With origin 'none', how often capture also looks for a foreign replication origin. */
const ORIGIN_CHECK_MS = 1000;

interface Pending {
  lsn: string;
  rows: number;
  settled: boolean;
  failed?: unknown;
  done: Promise<void>;
}

export class Capture {
  private confirmed: string | undefined;
  // Highest commit counted as captured: after a stream restart the slot replays transactions
  // already published (the bus drops the duplicates); they must not be counted twice, or
  // "applied < captured" would read as loss.
  private highestCounted: string | undefined;
  private pending: Pending[] = [];
  private pendingRows = 0;
  private txRows = 0; // rows published for the open transaction, over its chunks
  private service: LogicalReplicationService | undefined;
  private lastActivity = Date.now();
  private ackSentAt = 0;
  private ackSent: string | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  private txPublishes: Promise<unknown>[] = [];
  private txChunks = new Map<string, number>(); // destination -> messages sent for the open transaction
  private nextIndex = 0;
  private signal: AbortSignal | undefined;
  // The slot was re-created in this process and the full copy that replaces its lost WAL has
  // not been sent yet (a restart owes it too: the destinations were forgotten first).
  private copyOwed = false;
  // The server-side echo filter of the current stream (origin-filter.ts).
  private readonly origins: OriginGuard;
  private failStream: ((err: unknown) => void) | undefined;
  private ackChain = Promise.resolve();
  readonly stats = { transactions: 0, rows: 0, messages: 0, skippedEcho: 0, confirmedLsn: '0/0', slotsLost: 0, originFilter: 'any' as OriginFilter };

  private readonly publisher: RetryingPublisher;

  constructor(private readonly o: CaptureOptions) {
    this.origins = new OriginGuard(o.connectionString, o.log);
    this.publisher = new RetryingPublisher({ publisher: o.publisher, key: o.region, log: o.log, metrics: o.metrics, signal: () => this.signal });
  }

  get confirmedLsn(): string | undefined {
    return this.confirmed;
  }

  get pendingTransactions(): number {
    return this.pending.length;
  }

  /** Tails the slot until aborted, reconnecting with backoff; resolves after draining. */
  async run(signal: AbortSignal): Promise<void> {
    this.signal = signal;
    const idle = idleHeartbeats({ connectionString: this.o.connectionString, everyMs: this.o.idleHeartbeatMs ?? 10_000, lastActivity: () => this.lastActivity, log: this.o.log }, signal);
    let attempt = 0;
    let slotBusy = 0;
    while (!signal.aborted) {
      try {
        await this.ensureSlot();
        await this.stream(signal);
        attempt = 0;
        slotBusy = 0;
      } catch (err) {
        if (signal.aborted) break;
        if ((err as { code?: string }).code === SLOT_IN_USE) {
          // Another process streams the slot: during a rolling update, the agent this one
          // replaces. Ask every second so the hand-over is quick, and say so now and then
          // rather than on every try (it may also be something that should not be there).
          if (slotBusy++ % 60 === 0) this.o.log.warn({ err: errInfo(err), waitedS: slotBusy - 1 }, 'replication slot in use by another process; waiting for it');
          await sleep(1000, signal);
          continue;
        }
        this.o.metrics?.captureErrors.inc();
        this.o.log.warn({ err: errInfo(err), attempt }, 'capture stream failed; reconnecting');
        await sleep(backoff(attempt++), signal);
      }
    }
    await this.drain();
    await idle;
    await this.origins.end();
  }

  /**
   * Before each (re)connect: a slot that is gone or invalidated is re-created and every
   * destination gets a full copy of this region before streaming resumes (see
   * slot-recovery.ts). Retried by the caller until it succeeds.
   */
  private async ensureSlot(): Promise<void> {
    const slot = slotName(this.o.region, databaseOf(this.o.connectionString));
    const db = guardClient(new pg.Client({ connectionString: this.o.connectionString, application_name: 'regionsync-capture-catalog' }));
    await db.connect();
    try {
      const state = await slotState(db, slot);
      if (state !== 'ok') {
        this.o.log.error({ slot, state, code: 'RS_REPLICATION_SLOT_LOST' }, 'replication slot lost: changes since its last acknowledgement cannot be read; re-creating it and sending every region a full copy');
        this.o.metrics?.slotsLost.inc();
        this.stats.slotsLost += 1;
        await recreateSlot(db, slot, this.o.destinations);
        this.copyOwed = true;
      }
      if (this.copyOwed) {
        const copy = await initialCopy(db, { region: this.o.region, prefix: this.o.prefix, publisher: this.o.publisher, codec: this.o.codec, egress: this.o.egress, log: this.o.log, chunkRows: this.o.chunkRows, destinations: this.o.destinations, tables: this.o.tables.map(qualify), ackBarrier: this.o.ackBarrier });
        this.copyOwed = false;
        this.o.log.info({ slot, regions: copy.regions, rows: copy.rows }, 'slot re-created; full copy sent');
      }
      this.stats.originFilter = await this.origins.choose(db);
    } finally {
      await db.end().catch(() => undefined);
    }
  }

  /** What a standby status reports: with origin 'none' only what passed the origin check. */
  private standbyLsn(): string {
    return (this.origins.filter === 'none' ? this.ackSent : this.confirmed) ?? '0/0';
  }

  private async stream(signal: AbortSignal): Promise<void> {
    const keys = await this.primaryKeys();
    const assembler = new TransactionAssembler(this.o.region, new Set(this.o.tables), this.o.chunkRows ?? 500, (rows, meta) => {
      this.publishChunk(rows, meta.commitLsn, meta.xid, meta.vclock, meta.maxHlc, false, '', meta.schemas);
    }, (table) => keys.get(table));
    // acknowledge.auto=false + timeoutSeconds=0: never acknowledge on a timer; only what the bus confirmed.
    const service = new LogicalReplicationService({ connectionString: this.o.connectionString }, { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } });
    this.service = service;
    this.ackSent = undefined; // a new stream: the next confirmed position is sent again
    const standby = setInterval(() => {
      if (Date.now() - this.ackSentAt < STANDBY_STATUS_MS) return;
      this.ackSentAt = Date.now();
      void service.acknowledge(slotAckArgument(this.standbyLsn())).catch(() => undefined);
    }, STANDBY_STATUS_MS / 2);
    // Also between acknowledgements: on a quiet database the next one may be an idle heartbeat
    // away, and a transaction left out under a new foreign origin would wait for it.
    const originWatch = this.origins.filter === 'none' ? setInterval(() => void this.origins.check().then((problem) => problem && this.failStream?.(problem)), ORIGIN_CHECK_MS) : undefined;
    const failed = new Promise<never>((_, reject) => {
      service.on('error', reject);
      this.failStream = reject;
    });
    const plugin = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: [PUBLICATION], messages: true, ...(this.origins.filter === 'none' ? { origin: 'none' as const } : {}) });
    let handled = 0;
    let txOpen = false;
    service.on('heartbeat', async (lsn: string, _ts: number, shouldRespond: boolean) => {
      // Caught up (every message before this keepalive handled, no transaction open, every
      // commit confirmed by the bus): nothing before the server's position is owed, so
      // confirm it, as PostgreSQL's own subscribers do. A fast shutdown waits until each
      // walsender's client has confirmed the end of WAL; an agent that confirmed only its
      // last commit held the server's shutdown (and its walsender spinning) for as long as
      // it stayed connected.
      const caughtUp = handled === plugin.received && !txOpen && this.pending.length === 0;
      if (caughtUp && (this.confirmed === undefined || compareLsn(lsn, this.confirmed) > 0)) {
        this.confirmed = lsn;
        this.stats.confirmedLsn = lsn;
        await this.acknowledgeConfirmed(shouldRespond);
      }
      if (shouldRespond) await service.acknowledge(slotAckArgument(this.standbyLsn())).catch(() => undefined);
    });
    service.on('data', async (_lsn: string, raw: unknown) => {
      const msg = raw as PgMessage;
      try {
        if (msg.tag === 'begin') {
          txOpen = true;
          this.txPublishes = [];
          this.txRows = 0;
          this.txAwaited = 0;
          this.txChunks.clear();
          this.nextIndex = 0;
        }
        const tx = assembler.push(msg);
        if (tx) await this.onCommit(tx);
        else if (this.txPublishes.length - this.txAwaited > MAX_CHUNKS_IN_FLIGHT) await this.awaitOlderChunks();
        if (msg.tag === 'commit') txOpen = false;
      } finally {
        handled += 1;
      }
    });
    // Send the newest confirmed position before the stream closes (acks are throttled).
    const onAbort = () => void this.sendAck().finally(() => void service.stop());
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      // No start LSN: the server resumes from the slot's confirmed position, i.e. after the
      // last transaction the bus confirmed (never from what was merely received).
      await Promise.race([service.subscribe(plugin, slotName(this.o.region, databaseOf(this.o.connectionString)), '0/00000000'), failed]);
      if (!signal.aborted) await Promise.race([failed, new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))]);
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearInterval(standby);
      clearInterval(originWatch);
      this.failStream = undefined;
      await service.stop().catch(() => undefined);
      this.service = undefined;
    }
  }

  // Read at every (re)connect, so a primary key changed while we were away is picked up.
  private async primaryKeys(): Promise<Map<TableName, string[]>> {
    const db = guardClient(new pg.Client({ connectionString: this.o.connectionString, application_name: 'regionsync-capture-catalog' }));
    await db.connect();
    try {
      const out = new Map<TableName, string[]>();
      for (const t of this.o.tables) {
        const info = await loadTableInfo(db, t).catch(() => undefined);
        if (info && info.keyColumns.length > 0) out.set(info.name, info.keyColumns);
      }
      return out;
    } finally {
      await db.end().catch(() => undefined);
    }
  }

  // A huge transaction streams out in chunks while the WAL is read; without a bound the
  // encoded chunks waiting for the bus pile up in memory (a 100,000-row transaction took a
  // Kafka agent past 300 MB). The stream is paused while this waits (flow control).
  private txAwaited = 0;
  private async awaitOlderChunks(): Promise<void> {
    const upTo = this.txPublishes.length - MAX_CHUNKS_IN_FLIGHT / 2;
    await Promise.allSettled(this.txPublishes.slice(this.txAwaited, upTo));
    this.txAwaited = upTo;
  }

  private isNew(commitLsn: string): boolean {
    return this.highestCounted === undefined || compareLsn(commitLsn, this.highestCounted) > 0;
  }

  private async onCommit(tx: AssembledTransaction): Promise<void> {
    this.lastActivity = Date.now();
    // A transaction read again after a restart was counted (and timed) the first time.
    const fresh = this.isNew(tx.commitLsn);
    if (tx.fromRegionsync) this.stats.skippedEcho += 1;
    else if (tx.rows.length > 0 || this.txChunks.size > 0) {
      this.publishChunk(tx.rows, tx.commitLsn, tx.xid, tx.vclock, tx.maxHlc, true, tx.commitTime, tx.schemas);
      if (fresh) {
        this.stats.transactions += 1;
        this.o.metrics?.transactionsCaptured.inc();
        this.highestCounted = tx.commitLsn;
      }
    }
    if (tx.truncated.length > 0) this.o.log.warn({ tables: tx.truncated }, 'TRUNCATE is not replicated; run it in every region');
    this.o.onTransaction?.(tx);
    const publishes = this.txPublishes;
    this.txPublishes = [];
    if (this.o.ackBarrier && publishes.length > 0) publishes.push(this.o.ackBarrier());
    const entry: Pending = { lsn: tx.commitEndLsn, rows: this.txRows, settled: false, done: Promise.resolve() };
    this.txRows = 0;
    this.pendingRows += entry.rows;
    const committedAt = fresh && publishes.length > 0 && !tx.fromRegionsync && tx.commitTime ? Date.parse(tx.commitTime) : NaN;
    entry.done = Promise.all(publishes).then(
      () => {
        if (!Number.isNaN(committedAt)) this.o.metrics?.captureDelaySeconds.observe(Math.max(0, (Date.now() - committedAt) / 1000));
        entry.settled = true;
        void this.acknowledgeConfirmed();
      },
      (err: unknown) => {
        entry.settled = true;
        entry.failed = err;
      },
    );
    this.pending.push(entry);
    // Backpressure: stop reading WAL (the slot keeps it) while too much is unconfirmed. In
    // rows too: with only the transaction bound, a fast writer had 200 transactions of
    // 1,000 rows waiting, and the agent passed 200 MB.
    while (this.pending.length > (this.o.maxPendingTransactions ?? 1000) || (this.pending.length > 1 && this.pendingRows > (this.o.maxPendingRows ?? DEFAULT_MAX_PENDING_ROWS))) {
      await this.pending[0]!.done;
      if (this.pending[0]?.failed) throw this.pending[0].failed;
      await this.acknowledgeConfirmed();
    }
  }

  private publishChunk(rows: RowChange[], commitLsn: string, xid: number, vclock: VectorClock, maxHlc: string, last: boolean, commitTime: string, schemas: Record<string, string>): void {
    this.txRows += rows.length;
    if (this.isNew(commitLsn)) {
      this.stats.rows += rows.length;
      this.o.metrics?.rowsCaptured.inc(rows.length);
    }
    for (const destination of this.o.destinations) {
      const out: RowChange[] = [];
      for (const r of rows) {
        const filtered = this.o.egress ? this.o.egress(r, destination) : r;
        if (filtered) out.push(filtered);
      }
      if (out.length === 0 && !(last && this.txChunks.has(destination))) continue;
      this.txChunks.set(destination, (this.txChunks.get(destination) ?? 0) + 1);
      this.sendSplit(destination, out, { commitLsn, xid, vclock, hlc: maxHlc, last, commitTime: commitTime || new Date().toISOString(), schemas });
    }
  }

  /** Encodes one message, halving the rows until each part fits the codec's size limit. */
  private sendSplit(destination: string, rows: RowChange[], m: { commitLsn: string; xid: number; vclock: VectorClock; hlc: string; last: boolean; commitTime: string; schemas: Record<string, string> }): void {
    const index = this.nextIndex++;
    const schemas: Record<string, string> = {};
    for (const r of rows) if (m.schemas[r.table] !== undefined) schemas[r.table] = m.schemas[r.table]!;
    const body: ChangeBody = { sourceRegion: this.o.region, destination, commitLsn: m.commitLsn, commitTime: m.commitTime, xid: m.xid, hlc: m.hlc || '000000000000000.000000', vclock: m.vclock, chunk: { index, last: m.last }, rows, ...(rows.length > 0 ? { schemas } : {}) };
    let data: Uint8Array;
    try {
      data = this.o.codec.encode(makeEnvelope('change', this.o.region, body, messageId(this.o.region, m.commitLsn, index)));
    } catch (err) {
      if (rows.length > 1) {
        this.nextIndex--; // reuse the index for the first half: ids stay deterministic
        const half = Math.ceil(rows.length / 2);
        this.sendSplit(destination, rows.slice(0, half), { ...m, last: false });
        this.sendSplit(destination, rows.slice(half), m);
        return;
      }
      this.o.log.error({ destination, commitLsn: m.commitLsn, table: rows[0]?.table, err: errInfo(err) }, 'a single row does not fit in a message; it cannot be replicated');
      this.txPublishes.push(Promise.reject(err));
      return;
    }
    const subject = changesSubject(this.o.prefix, destination);
    const id = messageId(this.o.region, m.commitLsn, index);
    this.stats.messages += 1;
    this.txPublishes.push(this.publisher.publish(subject, data, id));
  }

  /** Acknowledge the slot up to the newest commit whose messages (and all before it) are confirmed. */
  private async acknowledgeConfirmed(now = false): Promise<void> {
    let lsn: string | undefined;
    while (this.pending.length > 0 && this.pending[0]!.settled && !this.pending[0]!.failed) {
      const done = this.pending.shift()!;
      this.pendingRows -= done.rows;
      lsn = done.lsn;
    }
    if (lsn !== undefined && (this.confirmed === undefined || compareLsn(lsn, this.confirmed) > 0)) {
      this.confirmed = lsn;
      this.stats.confirmedLsn = lsn;
    }
    if (this.confirmed === undefined || this.confirmed === this.ackSent) return;
    if (now || Date.now() - this.ackSentAt >= ACK_INTERVAL_MS) await this.sendAck();
    else this.ackTimer ??= setTimeout(() => void this.sendAck(), ACK_INTERVAL_MS);
  }

  // One at a time: an acknowledgement waits for its origin check, and a later one must not
  // overtake it with an older position.
  private sendAck(): Promise<void> {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    // A failure must not stop every later acknowledgement: the next one simply tries again.
    this.ackChain = this.ackChain.then(() => this.sendAckNow()).catch((err: unknown) => this.o.log.warn({ err: errInfo(err) }, 'slot acknowledgement failed; the next one retries'));
    return this.ackChain;
  }

  private async sendAckNow(): Promise<void> {
    const lsn = this.confirmed;
    const service = this.service;
    if (lsn === undefined || lsn === this.ackSent || !service) return;
    if (this.ackSent !== undefined && compareLsn(lsn, this.ackSent) <= 0) return;
    this.ackSentAt = Date.now();
    // The check starts after every transaction up to lsn was received (see origin-filter.ts).
    // If it fails, the stream restarts (with 'any' once a foreign origin was seen) from the
    // last acknowledgement, which this one does not move.
    const problem = await this.origins.check();
    if (problem) {
      this.failStream?.(problem);
      return;
    }
    if (service !== this.service) return; // the stream restarted meanwhile
    this.ackSent = lsn;
    await service.acknowledge(slotAckArgument(lsn)).catch(() => undefined);
  }

  private async drain(): Promise<void> {
    await Promise.allSettled(this.pending.map((p) => p.done));
    await this.acknowledgeConfirmed(true);
  }
}
