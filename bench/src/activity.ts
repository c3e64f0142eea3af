// Sampling profiler for PostgreSQL sessions: how often a backend (the apply session, the
// walsender) is running a statement, waiting for its client inside a transaction, or idle.
import pg from 'pg';

export class ActivitySampler {
  private client: pg.Client | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  readonly counts = new Map<string, number>();
  samples = 0;

  /** `where` selects the sessions of interest in pg_stat_activity (one row per sample expected). */
  /** withQuery: also key samples by the session's current/last statement (first words). */
  /** everyMs: 50, not finer: each sample is a pg_stat_activity query, and at 10 ms the two
   *  samplers cost about 5 % of the 2-core machine during the very phases they describe. */
  constructor(private readonly url: string, private readonly where: string, private readonly withQuery = false, private readonly everyMs = 50) {}

  async start(): Promise<this> {
    this.client = new pg.Client({ connectionString: this.url, application_name: 'regionsync-bench-sampler' });
    await this.client.connect();
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const r = await this.client!.query<{ s: string }>(
          `select coalesce(state, backend_type) || coalesce(' / ' || wait_event, '')${this.withQuery ? " || ' :: ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 48)" : ''} as s from pg_stat_activity where ${this.where}`,
        );
        this.samples += 1;
        for (const row of r.rows) this.counts.set(row.s, (this.counts.get(row.s) ?? 0) + 1);
        if (r.rows.length === 0) this.counts.set('(no session)', (this.counts.get('(no session)') ?? 0) + 1);
        await new Promise((res) => setTimeout(res, this.everyMs));
      }
    })();
    return this;
  }

  /** Share of samples per state, most frequent first, e.g. { 'active': 62, 'idle in transaction / ClientRead': 30 }. */
  async stop(): Promise<Record<string, number>> {
    this.running = false;
    await this.loop?.catch(() => undefined);
    await this.client?.end().catch(() => undefined);
    const out: Record<string, number> = {};
    for (const [k, v] of [...this.counts].sort((a, b) => b[1] - a[1])) if (v / Math.max(1, this.samples) >= 0.005) out[k] = Math.round((1000 * v) / Math.max(1, this.samples)) / 10;
    return out;
  }
}
