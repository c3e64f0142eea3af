// Statements of one apply transaction, sent in as few round trips as possible. Writes are
// queued and travel with the next statement whose result is needed (the next load, or the
// commit), as one simple-protocol query: an apply transaction is two round trips (begin +
// load, writes + commit) instead of one per statement. Each round trip woke the agent and
// the backend once more on the path every change takes, which on a loaded machine is where
// commit-to-visible latency went. Values travel as literals (simple protocol has no
// parameters), quoted by sqlText/sqlJson below.
//
// The statements apply repeats (load, upsert, delete, save versions, progress) are
// Prepared: PREPAREd once per connection, then EXECUTEd with literal arguments in the same
// pipeline, which saves parsing and analysing them every time (the apply session still
// plans every execution: see Applier.session).
import type pg from 'pg';

/**
 * A statement with `$1…$n` placeholders (cast in the text) and their SQL literal arguments.
 * A Statement is exactly one SQL statement: results are matched to statements by position.
 */
export interface Prepared {
  sql: string;
  args: string[];
}
export type Statement = string | Prepared;

/** Prepared statements per connection; past this many the connection's set starts over. */
const MAX_PREPARED = 200;
const preparedBy = new WeakMap<pg.ClientBase, Map<string, string>>();
let nextName = 0;

export class TxPipeline {
  private pending: string[] = [];
  /** Prepared in what is pending: confirmed for the connection once that was sent. */
  private fresh = new Map<string, string>();
  private readonly prepared: Map<string, string>;

  constructor(readonly db: pg.ClientBase) {
    let m = preparedBy.get(db);
    if (!m) preparedBy.set(db, (m = new Map()));
    this.prepared = m;
  }

  /** Queues a statement; it is sent with the next `run` or `flush`, in order. */
  queue(statement: Statement): void {
    this.pending.push(...this.render(statement));
  }

  /**
   * Sends the queued statements and then `statements`; resolves with the results of
   * `statements` (one per statement). An error in any of them rejects (the transaction is
   * then aborted, and the statements after it were not run).
   */
  async run(...statements: Statement[]): Promise<pg.QueryResult[]> {
    const all = this.pending;
    this.pending = [];
    const wanted: number[] = [];
    for (const st of statements) {
      all.push(...this.render(st));
      wanted.push(all.length - 1);
    }
    const list = await this.send(all);
    return wanted.map((i) => list[i]!);
  }

  /** Sends whatever is queued, so statements issued directly on `db` come after it. */
  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const all = this.pending;
    this.pending = [];
    await this.send(all);
  }

  private async send(all: string[]): Promise<pg.QueryResult[]> {
    const fresh = this.fresh;
    this.fresh = new Map();
    // On failure whether a PREPARE in it ran is unknown (PREPARE is not undone by a
    // rollback): those texts are prepared again next time, under new names.
    const res = (await this.db.query(all.join(';\n'))) as pg.QueryResult | pg.QueryResult[];
    for (const [sql, name] of fresh) this.prepared.set(sql, name);
    const list = Array.isArray(res) ? res : [res];
    // Two statements in one queued string shift every later result onto the wrong
    // statement: an apply would merge against another query's rows (no local rows, no
    // versions) and overwrite newer local writes. Refuse rather than mis-map.
    if (list.length !== all.length) {
      await this.db.query('rollback').catch(() => undefined);
      throw new Error(`TxPipeline: ${all.length} statements sent but ${list.length} results came back; queue exactly one SQL statement per entry`);
    }
    return list;
  }

  private render(st: Statement): string[] {
    if (typeof st === 'string') return [st];
    const out: string[] = [];
    let name = this.prepared.get(st.sql) ?? this.fresh.get(st.sql);
    if (name === undefined) {
      if (this.prepared.size + this.fresh.size >= MAX_PREPARED) {
        out.push('deallocate all');
        this.prepared.clear();
        this.fresh.clear();
      }
      name = `rs_${(nextName++).toString(36)}`;
      out.push(`prepare ${name} as ${st.sql}`);
      this.fresh.set(st.sql, name);
    }
    out.push(st.args.length > 0 ? `execute ${name}(${st.args.join(', ')})` : `execute ${name}`);
    return out;
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
