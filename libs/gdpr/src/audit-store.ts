// The audit ledger in the region's own database (schema `regionsync`): append-only,
// hash-chained. Appends are serialised on a one-row head so two writers (capture's egress
// decisions, apply's refusals) can never fork the chain.
import type pg from 'pg';
import { appendEntry, type AuditEntry, type AuditFields } from './audit-chain.js';

export const AUDIT_DDL = `
create schema if not exists regionsync;
create table if not exists regionsync.audit_log (
  seq bigint primary key,
  at bigint not null,
  kind text not null,
  table_name text not null,
  key jsonb not null,
  destination text,
  reason text not null,
  prev_hash text not null,
  hash text not null
);
create table if not exists regionsync.audit_head (id int primary key default 1 check (id = 1), seq bigint not null default 0, hash text);
insert into regionsync.audit_head (id) values (1) on conflict do nothing;
`;

interface Row {
  seq: string;
  at: string;
  kind: AuditEntry['kind'];
  table_name: string;
  key: Record<string, string | null>;
  destination: string | null;
  reason: string;
  prev_hash: string;
  hash: string;
}

function fromRow(r: Row, region: string): AuditEntry {
  return { region, seq: Number(r.seq), at: Number(r.at), kind: r.kind, table: r.table_name, key: r.key, ...(r.destination ? { destination: r.destination } : {}), reason: r.reason, prevHash: r.prev_hash, hash: r.hash } as AuditEntry;
}

/** Appends entries inside the caller's open transaction (so they commit with its work). */
export async function appendAuditInTx(db: pg.ClientBase, region: string, fields: Omit<AuditFields, 'region'>[]): Promise<AuditEntry[]> {
  if (fields.length === 0) return [];
  const head = await db.query<{ seq: string; hash: string | null }>('select seq, hash from regionsync.audit_head where id = 1 for update');
  let prev: AuditEntry | undefined;
  if (head.rows[0] && Number(head.rows[0].seq) > 0) {
    const last = await db.query<Row>('select * from regionsync.audit_log where seq = $1', [head.rows[0].seq]);
    if (last.rows[0]) prev = fromRow(last.rows[0], region);
  }
  const out: AuditEntry[] = [];
  for (const f of fields) {
    prev = appendEntry(prev, { ...f, region } as AuditFields);
    out.push(prev);
  }
  await db.query(
    `insert into regionsync.audit_log (seq, at, kind, table_name, key, destination, reason, prev_hash, hash)
     select * from unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[], $8::text[], $9::text[])`,
    [out.map((e) => e.seq), out.map((e) => e.at), out.map((e) => e.kind), out.map((e) => e.table), out.map((e) => JSON.stringify(e.key)), out.map((e) => e.destination ?? null), out.map((e) => e.reason), out.map((e) => e.prevHash), out.map((e) => e.hash)],
  );
  await db.query('update regionsync.audit_head set seq = $1, hash = $2 where id = 1', [prev!.seq, prev!.hash]);
  return out;
}

export async function readAudit(db: pg.ClientBase, region: string): Promise<AuditEntry[]> {
  const r = await db.query<Row>('select * from regionsync.audit_log order by seq');
  return r.rows.map((x) => fromRow(x, region));
}

/**
 * Queues entries from code that is not inside a database transaction (capture's egress
 * decisions) and writes them in batches; `flushed()` resolves once everything queued so
 * far is committed, so the replication slot is acknowledged only after its audit trail.
 */
export class AuditQueue {
  private queue: Omit<AuditFields, 'region'>[] = [];
  private flushing: Promise<void> = Promise.resolve();
  readonly counts = new Map<string, number>();

  constructor(private readonly pool: pg.Pool, private readonly region: string, private readonly onError: (err: unknown) => void) {}

  record(fields: Omit<AuditFields, 'region'>): void {
    this.queue.push(fields);
    this.counts.set(fields.kind, (this.counts.get(fields.kind) ?? 0) + 1);
  }

  flushed(): Promise<void> {
    if (this.queue.length === 0) return this.flushing;
    const batch = this.queue;
    this.queue = [];
    this.flushing = this.flushing.then(() => this.write(batch));
    return this.flushing;
  }

  private async write(batch: Omit<AuditFields, 'region'>[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const db = await this.pool.connect().catch((err: unknown) => err as Error);
      if (db instanceof Error) {
        this.onError(db);
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
        continue;
      }
      try {
        await db.query('begin');
        await appendAuditInTx(db, this.region, batch);
        await db.query('commit');
        return;
      } catch (err) {
        await db.query('rollback').catch(() => undefined);
        this.onError(err);
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
      } finally {
        db.release();
      }
    }
  }
}
