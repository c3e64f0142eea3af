// Statements of one apply transaction, sent in as few round trips as possible. Writes are
// queued and travel with the next statement whose result is needed (the next load, or the
// commit), as one simple-protocol query: an apply transaction is two round trips (begin +
// load, writes + commit) instead of one per statement. Each round trip woke the agent and
// the backend once more on the path every change takes, which on a loaded machine is where
// commit-to-visible latency went. Values travel as literals (simple protocol has no
// parameters), quoted by sqlText/sqlJson below.
import type pg from 'pg';

export class TxPipeline {
  private pending: string[] = [];

  constructor(readonly db: pg.ClientBase) {}

  /** Queues a statement; it is sent with the next `run` or `flush`, in order. */
  queue(sql: string): void {
    this.pending.push(sql);
  }

  /**
   * Sends the queued statements and then `statements`; resolves with the results of
   * `statements` (one per statement). An error in any of them rejects (the transaction is
   * then aborted, and the statements after it were not run).
   */
  async run(...statements: string[]): Promise<pg.QueryResult[]> {
    const all = [...this.pending, ...statements];
    this.pending = [];
    const res = (await this.db.query(all.join(';\n'))) as pg.QueryResult | pg.QueryResult[];
    const list = Array.isArray(res) ? res : [res];
    return list.slice(list.length - statements.length);
  }

  /** Sends whatever is queued, so statements issued directly on `db` come after it. */
  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const all = this.pending;
    this.pending = [];
    await this.db.query(all.join(';\n'));
  }
}

/**
 * A string literal of `s`: dollar-quoted, so nothing in it is escaped and it means the
 * same whatever `standard_conforming_strings` says. Escaping (two regex passes and two
 * copies of every batch's JSON, megabytes per transaction when catching up) cost about a
 * tenth of the applying agent's CPU; finding a tag takes one scan. The tag is one whose
 * first occurrence in `s + tag` is the closing one, which is exactly the rule PostgreSQL's
 * lexer applies (a value ending in `$rs` must not close early).
 */
export function sqlText(s: string): string {
  for (let i = 0; ; i++) {
    const tag = i === 0 ? '$rs$' : `$rs${i}$`;
    if ((s + tag).indexOf(tag) === s.length) return `${tag}${s}${tag}`;
  }
}

/** A jsonb literal of `value`. */
export function sqlJson(value: unknown): string {
  return `${sqlText(JSON.stringify(value))}::jsonb`;
}

/** A text[] literal. */
export function sqlTextArray(values: readonly string[]): string {
  return values.length === 0 ? `'{}'::text[]` : `array[${values.map(sqlText).join(',')}]::text[]`;
}
