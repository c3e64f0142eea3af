import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import pg from 'pg';
import type { Logger } from 'pino';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { createBus, type Bus, type Consumer } from '@regionsync/bus';
import { ErasedSubjects } from '@regionsync/gdpr';
import { changesSubject, createCodec, errorCode, heartbeatsSubject, makeEnvelope, RegionsyncError, type ChangeBody, type Envelope, type HeartbeatBody } from '@regionsync/protocol';
import { Applier, Capture, createReplicationMetrics, errInfo, guardClient, setupDatabase, sleep, slotName, databaseOf, initialCopy, qualify, type EgressFilter, type IngressFilter, type ReplicationMetrics } from '@regionsync/replication';
import type { AgentConfig } from './config.js';
import { startHttpServer } from './http-server.js';
import { startErasureConsumer } from './erasure-handler.js';
import { loadPolicy, policyRuntime, type PolicyRuntime } from './policy-hooks.js';
import { runRelocator } from './relocator.js';

const POISON = new Set(['RS_PROTOCOL_DECODE', 'RS_PROTOCOL_SCHEMA', 'RS_PROTOCOL_VERSION', 'RS_PROTOCOL_TOO_LARGE', 'RS_CONFLICT_INVALID_VERSION', 'RS_CONFLICT_STRATEGY']);
const isPoison = (err: unknown) => POISON.has(errorCode(err) ?? '') || (err instanceof Error && POISON.has(errorCode(err.cause) ?? ''));

export type AgentMode = 'starting' | 'connected' | 'autonomous' | 'catching-up' | 'draining' | 'refusing';

export interface AgentHooks {
  /** Test hook: replaces the policy-derived filters (documented; used by no production path). */
  egress?: EgressFilter;
  ingress?: IngressFilter;
}

/**
 * One region's daemon. Start order: database setup → bus → apply consumer → capture →
 * heartbeats → HTTP; stop runs in reverse and drains (publishes confirmed, slot
 * acknowledged, in-flight apply finished) before closing connections.
 */
export class Agent {
  readonly registry = new Registry();
  private readonly metrics: ReplicationMetrics;
  private readonly modeGauge: Gauge<'mode'>;
  private readonly databaseUp: Gauge;
  private readonly abort = new AbortController();
  private bus: Bus | undefined;
  private pool: pg.Pool | undefined;
  private capture: Capture | undefined;
  private applier: Applier | undefined;
  private consumer: Consumer | undefined;
  private controlConsumer: Consumer | undefined;
  private http: Server | undefined;
  private loops: Promise<void>[] = [];
  private mode: AgentMode = 'starting';
  private policy: PolicyRuntime = { policyHash: 'none' };
  private readyFlag = false;
  private startedAt = Date.now();
  private retainedWal = 0;
  /** Since when the region's database has not answered (undefined: it answers). */
  private databaseDownSince: number | undefined;
  httpUrl = '';
  /** Hash of the effective configuration, for drift detection across regions. */
  readonly configHash: string;

  constructor(private readonly cfg: AgentConfig, private readonly log: Logger, private readonly hooks: AgentHooks = {}) {
    this.configHash = `sha256:${createHash('sha256').update(JSON.stringify({ ...cfg, database: undefined, http: undefined })).digest('hex')}`;
    this.registry.setDefaultLabels({ region: cfg.region });
    collectDefaultMetrics({ register: this.registry, prefix: 'regionsync_agent_' });
    this.metrics = createReplicationMetrics(this.registry);
    this.modeGauge = new Gauge({ name: 'regionsync_agent_mode', help: 'Agent mode (1 for the current one)', labelNames: ['mode'], registers: [this.registry] });
    this.databaseUp = new Gauge({ name: 'regionsync_agent_database_up', help: "1 while the region's database answers the agent's probe, 0 while it does not", registers: [this.registry] });
    this.databaseUp.set(1);
  }

  async start(): Promise<void> {
    const { cfg, log } = this;
    const signal = this.abort.signal;
    this.setMode('starting');
    // A bounded connect: the database probe must notice a server that stopped answering.
    this.pool = new pg.Pool({ connectionString: cfg.database.url, max: 4, application_name: `regionsync-agent-${cfg.region}`, connectionTimeoutMillis: 5000 });
    this.pool.on('error', (err) => log.warn({ err: errInfo(err) }, 'idle database connection failed'));
    // The pool listens for errors only on idle clients; a session ended while checked out
    // must not crash the agent either (the holder sees the failure through its query).
    this.pool.on('connect', (c) => void guardClient(c));
    const db = await this.pool.connect();
    try {
      await setupDatabase(db, { region: cfg.region, database: databaseOf(cfg.database.url), regions: cfg.regions, tables: cfg.tables });
    } finally {
      db.release();
    }
    log.info({ tables: cfg.tables.length, slot: slotName(cfg.region, databaseOf(cfg.database.url)) }, 'database ready');
    this.policy = await policyRuntime(cfg, loadPolicy(cfg), this.pool, this.registry, log.child({ component: 'gdpr' }));

    const codec = createCodec();
    this.bus = createBus({ kind: cfg.bus.kind, servers: cfg.bus.servers, prefix: cfg.bus.prefix, clientId: `regionsync-agent-${cfg.region}`, log: log.child({ component: 'bus' }) });
    await this.bus.connect();
    await this.bus.provision({ regions: cfg.regions });
    log.info({ kind: cfg.bus.kind }, 'bus ready');

    this.applier = new Applier({ region: cfg.region, connectionString: cfg.database.url, tables: cfg.tables, log: log.child({ component: 'apply' }), metrics: this.metrics, ingress: this.hooks.ingress ?? this.policy.ingress, auditInTx: this.policy.auditInTx, shareLockTables: this.policy.erasure ? [ErasedSubjects.LOCK_TABLE] : [], maxClockSkewMs: cfg.replication.maxClockSkewMs, registry: this.registry });
    const adb = await this.pool.connect();
    try {
      await this.applier.init(adb);
    } finally {
      adb.release();
    }
    const applier = this.applier;
    const applyLog = log.child({ component: 'apply' });
    const changeBody = (env: unknown): ChangeBody => {
      const e = env as Envelope;
      if (e.kind !== 'change') throw new RegionsyncError('RS_PROTOCOL_SCHEMA', `expected a change message on the changes subject, got ${e.kind}`);
      return e.body;
    };
    // Retryable failures (database down, origin busy) are retried here without limit:
    // dead-lettering a valid change would lose it. Only a message that can never apply (bad
    // shape) may go to the dead-letter subject; anything else (database down, origin busy,
    // skew) is retried in place.
    const retryInPlace = async (fn: () => Promise<unknown>, what: Record<string, unknown>): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        try {
          await fn();
          return;
        } catch (err) {
          if (isPoison(err) || signal.aborted) throw err;
          if (attempt % 10 === 0) applyLog.warn({ ...what, attempt, err: errInfo(err) }, 'apply failed; retrying');
          await sleep(Math.min(10_000, 100 * 2 ** Math.min(attempt, 7)), signal);
        }
      }
    };
    this.consumer = this.bus.consume({
      subject: changesSubject(cfg.bus.prefix, cfg.region),
      durable: `apply-${cfg.region}`,
      maxInFlight: cfg.replication.applyMaxInFlight,
      maxDeliveries: 5,
      signal,
      // Decoded and validated once, by the bus; the handlers get the envelope as `decoded`.
      decodeCheck: (d) => codec.decode(d),
      onDeadLetter: (m, reason) => applyLog.error({ seq: m.seq, id: m.id, reason }, 'message dead-lettered'),
      // Several fetched messages in one local transaction per source; if that fails, the bus
      // hands them to `handler` one by one, so a poison message is dead-lettered alone.
      maxBatch: cfg.replication.applyMaxBatch,
      maxBatchBytes: cfg.replication.applyMaxBatchBytes,
      batchHandler: async (ms) => {
        const bodies = ms.map((m) => changeBody(m.decoded ?? codec.decode(m.data)));
        await retryInPlace(() => applier.applyBatch(bodies), { source: bodies[0]!.sourceRegion, lsn: bodies[0]!.commitLsn, messages: bodies.length });
      },
      handler: async (m) => {
        const body = changeBody(m.decoded ?? codec.decode(m.data));
        await retryInPlace(() => applier.apply(body), { source: body.sourceRegion, lsn: body.commitLsn });
      },
    });

    this.controlConsumer = startErasureConsumer({ cfg, bus: this.bus, codec, policy: this.policy, log: log.child({ component: 'erasure' }), signal, isPoison });

    this.capture = new Capture({
      region: cfg.region,
      destinations: cfg.regions.filter((r) => r !== cfg.region),
      prefix: cfg.bus.prefix,
      connectionString: cfg.database.url,
      tables: cfg.tables.map((t) => t.name),
      publisher: this.bus,
      codec,
      log: log.child({ component: 'capture' }),
      metrics: this.metrics,
      egress: this.hooks.egress ?? this.policy.egress,
      ackBarrier: this.policy.ackBarrier,
      chunkRows: cfg.replication.chunkRows,
      maxPendingTransactions: cfg.replication.maxPendingTransactions,
      maxPendingRows: cfg.replication.maxPendingRows,
      idleHeartbeatMs: cfg.replication.idleHeartbeatMs,
    });
    this.loops.push(this.capture.run(signal));
    if (this.policy.relocations) {
      const capture = this.capture;
      this.loops.push(runRelocator({ region: cfg.region, databaseUrl: cfg.database.url, pool: this.pool, queue: this.policy.relocations, confirmedLsn: () => capture.confirmedLsn, log: log.child({ component: 'relocate' }) }, signal));
    }
    await this.initialCopy(codec);
    this.loops.push(this.heartbeats(signal));
    this.loops.push(this.watchSlot(signal));
    this.loops.push(this.watchDatabase(signal));
    const h = await startHttpServer(cfg.http.host, cfg.http.port, this.registry, this);
    this.http = h.server;
    this.httpUrl = h.url;
    this.readyFlag = true;
    this.setMode(this.bus.health().connected ? 'connected' : 'autonomous');
    log.info({ http: this.httpUrl }, 'agent started');
  }

  /**
   * A destination or table this agent has never replicated before (or one forgotten because
   * the slot's WAL was lost) gets a copy of what this region holds (capture is already
   * publishing to it, so there is no gap).
   */
  private async initialCopy(codec: ReturnType<typeof createCodec>): Promise<void> {
    const { cfg } = this;
    const db = await this.pool!.connect();
    try {
      const copy = await initialCopy(db, {
        region: cfg.region,
        prefix: cfg.bus.prefix,
        publisher: this.bus!,
        codec,
        egress: this.hooks.egress ?? this.policy.egress,
        log: this.log.child({ component: 'initial-copy' }),
        chunkRows: cfg.replication.chunkRows,
        destinations: cfg.regions.filter((r) => r !== cfg.region),
        tables: cfg.tables.map((t) => qualify(t.name)),
        ackBarrier: this.policy.ackBarrier,
      });
      if (copy.rows > 0) this.log.info({ newRegions: copy.regions, newTables: copy.tables, rows: copy.rows }, 'initial copy sent');
    } finally {
      db.release();
    }
  }

  private setMode(mode: AgentMode): void {
    if (mode !== this.mode) this.log.info({ from: this.mode, to: mode }, 'mode changed');
    this.mode = mode;
    this.modeGauge.reset();
    this.modeGauge.set({ mode }, 1);
  }

  health(): { status: number; body: Record<string, unknown> } {
    const bus = this.bus?.health();
    return {
      status: 200,
      body: {
        region: this.cfg.region,
        mode: this.mode,
        bus: bus ?? { connected: false },
        database: { connected: this.databaseDownSince === undefined, ...(this.databaseDownSince === undefined ? {} : { downForMs: Date.now() - this.databaseDownSince }) },
        confirmedLsn: this.capture?.confirmedLsn ?? null,
        pendingTransactions: this.capture?.pendingTransactions ?? 0,
        slotsLost: this.capture?.stats.slotsLost ?? 0,
        // 'none': the server leaves applied transactions out of the stream (PostgreSQL 16+, no foreign origin).
        originFilter: this.capture?.stats.originFilter ?? null,
        slotRetainedWalBytes: this.retainedWal,
        apply: this.consumer?.stats() ?? null,
        pausedTables: [...(this.applier?.guard.paused.keys() ?? [])],
        alarms: this.alarms(),
      },
    };
  }

  private alarms(): string[] {
    return [...(this.applier?.skewAlarms.entries() ?? [])].map(([source, ms]) => `clock-skew:${source}:${ms}ms`);
  }

  /** Not ready while the region's database does not answer: the region is not being served. */
  ready(): boolean {
    return this.readyFlag && this.mode !== 'draining' && this.databaseDownSince === undefined;
  }

  private async heartbeats(signal: AbortSignal): Promise<void> {
    const codec = createCodec();
    let heartbeatInFlight: Promise<void> | undefined;
    while (!signal.aborted) {
      const connected = this.bus?.health().connected ?? false;
      if (this.mode !== 'draining') this.setMode(!connected ? 'autonomous' : (this.applier?.skewAlarms.size ?? 0) > 0 ? 'refusing' : 'connected');
      // Published while disconnected too: for Kafka a successful send is what tells the bus
      // the broker is back, and without writes the heartbeat is the only send there is.
      if (this.bus && !heartbeatInFlight) {
        const body: HeartbeatBody = {
          region: this.cfg.region,
          mode: this.mode,
          startedAt: this.startedAt,
          lagSeconds: Object.fromEntries(this.applier?.lagSeconds ?? []),
          vclock: {},
          slotRetainedWalBytes: this.retainedWal,
          configHash: this.configHash,
          policyHash: this.policy.policyHash,
          deps: { database: { ok: this.databaseDownSince === undefined }, bus: { ok: connected } },
          pausedTables: [...(this.applier?.guard.paused.keys() ?? [])],
          alarms: this.alarms(),
        };
        const id = `${this.cfg.region}:hb:${Date.now()}`;
        // Not awaited: a publish to an unreachable broker waits up to its timeout, and the
        // mode above must keep following the bus meanwhile. One heartbeat at a time.
        heartbeatInFlight = this.bus
          .publish(heartbeatsSubject(this.cfg.bus.prefix, this.cfg.region), codec.encode(makeEnvelope('heartbeat', this.cfg.region, body, id)), { id })
          .then(
            () => undefined,
            (err: unknown) => {
              if (connected) this.log.warn({ err: errInfo(err) }, 'heartbeat not published');
            },
          )
          .finally(() => {
            heartbeatInFlight = undefined;
          });
      }
      await sleep(Math.min(this.cfg.heartbeatIntervalMs, 1000), signal);
    }
    await heartbeatInFlight;
  }

  private async watchSlot(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const r = await this.pool!.query<{ bytes: string | null }>('select pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text as bytes from pg_replication_slots where slot_name = $1', [slotName(this.cfg.region, databaseOf(this.cfg.database.url))]);
        this.retainedWal = Number(r.rows[0]?.bytes ?? 0);
        this.metrics.slotRetainedWalBytes.set(this.retainedWal);
        await this.applier?.resumePaused();
      } catch (err) {
        // While the database is down the probe below has said so once already.
        if (this.databaseDownSince === undefined) this.log.warn({ err: errInfo(err) }, 'reading slot position failed');
      }
      await sleep(2000, signal);
    }
  }

  /**
   * Probes the region's database every second. Capture, apply and erasure each reconnect
   * on their own; this only tells /healthz, /readyz, the heartbeat and the metrics, and
   * logs the outage once at each edge.
   */
  private async watchDatabase(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.probeDatabase();
        if (this.databaseDownSince !== undefined) this.log.info({ downMs: Date.now() - this.databaseDownSince }, 'database reachable again');
        this.databaseDownSince = undefined;
        this.databaseUp.set(1);
      } catch (err) {
        if (signal.aborted) break;
        if (this.databaseDownSince === undefined) {
          this.log.warn({ err: errInfo(err) }, 'database unreachable');
          this.databaseDownSince = Date.now();
        }
        this.databaseUp.set(0);
      }
      await sleep(1000, signal);
    }
  }

  // A connection of its own: through the shared pool a probe waited behind long users of
  // it (an initial copy, erasure) and could report a healthy database as down.
  private probe: pg.Client | undefined;
  private async probeDatabase(): Promise<void> {
    if (!this.probe) {
      const c = new pg.Client({ connectionString: this.cfg.database.url, application_name: `regionsync-agent-${this.cfg.region}-probe`, connectionTimeoutMillis: 5000, query_timeout: 5000 });
      c.on('error', () => {
        if (this.probe === c) this.probe = undefined;
      });
      try {
        await c.connect();
      } catch (err) {
        await c.end().catch(() => undefined);
        throw err;
      }
      this.probe = c;
    }
    const c = this.probe;
    try {
      await c.query('select 1');
    } catch (err) {
      if (this.probe === c) this.probe = undefined;
      await c.end().catch(() => undefined);
      throw err;
    }
  }

  /** Drain and stop in reverse start order. Idempotent. */
  async stop(): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.setMode('draining');
    this.readyFlag = false;
    this.log.info({}, 'draining');
    this.abort.abort();
    await Promise.allSettled(this.loops);
    await this.consumer?.done;
    await this.controlConsumer?.done;
    await new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r()));
    await this.bus?.close().catch((err: unknown) => this.log.warn({ err: errInfo(err) }, 'closing bus failed'));
    await this.applier?.close();
    await this.pool?.end().catch(() => undefined);
    await this.probe?.end().catch(() => undefined);
    this.log.info({ confirmedLsn: this.capture?.confirmedLsn ?? null }, 'stopped');
  }
}
