// Apply's database sessions: one per source region, bound to that source's replication
// origin (so its transactions carry the origin and commit its progress), plus a plain
// probe connection for catalog reads. Settings a role may not be allowed to make are
// warned about once and apply runs on without them.
import pg from 'pg';
import type { Logger } from 'pino';
import { errInfo } from './err-info.js';
import { databaseOf, originName } from './sql-names.js';

export interface SourceSession {
  client: pg.Client;
  /** The origin's progress (highest last-chunk commit LSN applied), as this session knows it. */
  progress: string | undefined;
}

export class ApplySessions {
  private sessions = new Map<string, Promise<SourceSession>>();
  private probe: pg.Client | undefined;
  private warned = new Set<string>();

  constructor(private readonly o: { connectionString: string; log: Logger }) {}

  /** The session of `source`, opened (origin set up, settings made, progress read) on first use. */
  get(source: string): Promise<SourceSession> {
    let s = this.sessions.get(source);
    if (!s) {
      s = this.open(source);
      s.catch(() => this.sessions.delete(source));
      this.sessions.set(source, s);
    }
    return s;
  }

  /** Forgets and closes a broken session; the next get() opens a new one. */
  async drop(source: string, client: pg.Client): Promise<void> {
    this.sessions.delete(source);
    await client.end().catch(() => undefined);
  }

  // A plain connection (no origin) for catalog reads when no source session exists yet.
  async anyClient(): Promise<pg.ClientBase | undefined> {
    if (!this.probe) {
      const c = new pg.Client({ connectionString: this.o.connectionString, application_name: 'regionsync-apply-probe' });
      c.on('error', () => (this.probe = undefined));
      try {
        await c.connect();
      } catch {
        return undefined;
      }
      this.probe = c;
    }
    return this.probe;
  }

  async close(): Promise<void> {
    await this.probe?.end().catch(() => undefined);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await s.then((x) => x.client.end(), () => undefined).catch(() => undefined);
  }

  private async open(source: string): Promise<SourceSession> {
    const client = new pg.Client({ connectionString: this.o.connectionString, application_name: `regionsync-apply-${source}` });
    client.on('error', () => this.sessions.delete(source));
    await client.connect();
    try {
      const origin = originName(source, databaseOf(this.o.connectionString));
      await client.query('select pg_replication_origin_session_setup($1)', [origin]);
      // Apply's statements are prepared (parsed once) and, in large transactions, planned
      // at every execution: a generic plan is made once, while a table may still be
      // nearly empty, and kept until the next ANALYZE; a scan chosen for a tiny table then
      // ran once per batch as it grew (a 200,000-row load took 65 s instead of 15).
      // Every apply statement reaches rows by key, so scans and hash/merge joins are
      // ruled out here: then a generic plan is the index plan too, and small
      // transactions use it (Applier's SMALL_TRANSACTION_ROWS) instead of planning each time.
      await client.query('set plan_cache_mode = force_custom_plan; set enable_seqscan = off; set enable_hashjoin = off; set enable_mergejoin = off');
      await this.keepValuesOutOfServerLog(client);
      await this.applyAsReplica(client);
      const r = await client.query<{ lsn: string | null }>('select pg_replication_origin_progress($1, true) as lsn', [origin]);
      return { client, progress: r.rows[0]?.lsn ?? undefined };
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  // A session setting apply wants but the role may not be allowed to make (superuser, or
  // PostgreSQL 15's GRANT SET ON PARAMETER): apply runs on without it, warning once.
  private async sessionSetting(client: pg.Client, sql: string, fix: string, consequence: string): Promise<void> {
    try {
      await client.query(sql);
    } catch (err) {
      if (this.warned.has(sql)) return;
      this.warned.add(sql);
      this.o.log.warn({ err: errInfo(err), fix }, consequence);
    }
  }

  // Apply's statements carry row values as literals, and PostgreSQL logs the text of a
  // statement that fails (a unique violation, a serialization failure or a deadlock with a
  // local write happen in normal operation) and a DETAIL that can quote the row: values
  // would pile up in the server log, out of reach of erasure.
  private keepValuesOutOfServerLog(client: pg.Client): Promise<void> {
    return this.sessionSetting(
      client,
      'set log_min_error_statement = panic; set log_error_verbosity = terse',
      'GRANT SET ON PARAMETER log_min_error_statement, log_error_verbosity TO <agent role> (PostgreSQL 15+), or ALTER ROLE <agent role> SET log_min_error_statement = panic as a superuser',
      'apply cannot keep row values out of the PostgreSQL server log: a failed apply statement is logged with its text',
    );
  }

  // Applied rows are checked neither by foreign keys nor by ordinary triggers, as in
  // PostgreSQL's own logical replication (session_replication_role = replica): the source
  // checked them, and between regions a child row can arrive for a parent another region
  // deleted at the same time. Checked here, that violation failed the message on every
  // retry, and every later change from its source waited behind it.
  private applyAsReplica(client: pg.Client): Promise<void> {
    return this.sessionSetting(
      client,
      'set session_replication_role = replica',
      'GRANT SET ON PARAMETER session_replication_role TO <agent role> (PostgreSQL 15+), or run the agent as a superuser',
      'apply cannot run as a replica session: foreign keys and triggers are checked on applied rows, and a foreign-key conflict between regions stops apply from that source',
    );
  }
}
