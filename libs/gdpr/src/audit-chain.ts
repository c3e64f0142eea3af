// Per-region, append-only, hash-chained audit ledger entries. Each entry's hash covers
// every field including the previous entry's hash, so editing, deleting or reordering
// any entry breaks verification from that point on. Storage (Postgres) lives with the
// replication engine; this module only builds and checks entries.
import {
  AUDIT_GENESIS_HASH,
  RegionsyncError,
  auditEventBodySchema,
  formatIssue,
  type AuditEventBody,
} from '@regionsync/protocol';
import { canonicalJson, sha256Hex, type JsonValue } from './canonical-json.js';
import type { Policy } from './policy-schema.js';
import { isAuditReason, type AuditReason } from './reasons.js';
import { tablePolicyOf, type RowValues } from './residency.js';

/** One ledger entry; identical to the body of an `audit-event` envelope. */
export type AuditEntry = AuditEventBody;
export type UnhashedAuditEntry = Omit<AuditEntry, 'hash'>;
/** What the caller supplies; seq, prevHash and hash are derived from the chain. */
export type AuditFields = Omit<AuditEntry, 'seq' | 'prevHash' | 'hash' | 'reason'> & { reason: AuditReason };

/** Sequence number of a region's first entry (matches a bigserial column). */
export const AUDIT_FIRST_SEQ = 1;

export type ChainProblem = 'edited' | 'deleted' | 'reordered' | 'bad-genesis';
export type VerifyResult = { ok: true; count: number } | { ok: false; atSeq: number; problem: ChainProblem };

/** A known chain position: the last verified entry, or the head a region last published. */
export interface ChainPoint {
  seq: number;
  hash: string;
}

export function hashEntry(entry: UnhashedAuditEntry): string {
  const { region, seq, at, kind, table, key, destination, reason, prevHash } = entry;
  // Fields listed explicitly: a stray property on the object must not change the hash.
  const body: JsonValue = { region, seq, at, kind, table, key: { ...key }, destination, reason, prevHash };
  return sha256Hex(canonicalJson(body));
}

/**
 * Key for an audit entry: the primary-key values with any PII column removed, so the
 * ledger (read centrally, outside the row's jurisdiction) never holds personal data.
 */
export function auditKey(policy: Policy, table: string, key: RowValues): Record<string, string | null> {
  const pii = tablePolicyOf(policy, table)?.pii ?? {};
  const out: Record<string, string | null> = {};
  for (const [column, value] of Object.entries(key)) if (!Object.hasOwn(pii, column)) out[column] = value;
  return out;
}

/**
 * Builds the next entry of `prev`'s chain (or the first one, chained to
 * AUDIT_GENESIS_HASH). Throws RS_PROTOCOL_SCHEMA for a malformed entry or a reason
 * outside the fixed vocabulary, RS_GDPR_AUDIT_CHAIN_BROKEN for another region's chain.
 */
export function appendEntry(prev: AuditEntry | undefined, fields: AuditFields): AuditEntry {
  if (prev !== undefined && prev.region !== fields.region) {
    throw new RegionsyncError('RS_GDPR_AUDIT_CHAIN_BROKEN', `region: expected ${prev.region} (one chain per region)`);
  }
  if (!isAuditReason(fields.reason)) {
    throw new RegionsyncError('RS_PROTOCOL_SCHEMA', 'reason: expected a reason from the fixed audit vocabulary');
  }
  const unhashed: UnhashedAuditEntry = {
    region: fields.region,
    seq: prev === undefined ? AUDIT_FIRST_SEQ : prev.seq + 1,
    at: fields.at,
    kind: fields.kind,
    table: fields.table,
    key: { ...fields.key },
    ...(fields.destination === undefined ? {} : { destination: fields.destination }),
    reason: fields.reason,
    prevHash: prev === undefined ? AUDIT_GENESIS_HASH : prev.hash,
  };
  const entry = { ...unhashed, hash: hashEntry(unhashed) };
  const parsed = auditEventBodySchema.safeParse(entry);
  if (!parsed.success) {
    throw new RegionsyncError('RS_PROTOCOL_SCHEMA', `audit entry: ${parsed.error.issues.map(formatIssue).join('; ')}`);
  }
  return entry;
}

/**
 * Verifies entries (ascending, as stored) of one region's chain. Without `after` they
 * must start at the genesis; with it they continue from that verified point. Deleting
 * or re-hashing the newest entries is only visible against `expectedHead` (the head a
 * region published), because nothing after them records their hashes.
 */
export function verifyChain(
  entries: readonly AuditEntry[],
  opts: { after?: ChainPoint; expectedHead?: ChainPoint } = {},
): VerifyResult {
  let expectedSeq = opts.after === undefined ? AUDIT_FIRST_SEQ : opts.after.seq + 1;
  let expectedPrev = opts.after === undefined ? AUDIT_GENESIS_HASH : opts.after.hash;
  const seen = new Map<number, string>();
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as AuditEntry;
    const { hash, ...unhashed } = e;
    if (hashEntry(unhashed) !== hash) return { ok: false, atSeq: e.seq, problem: 'edited' };
    if (e.seq !== expectedSeq) {
      if (e.seq < expectedSeq) return { ok: false, atSeq: e.seq, problem: 'reordered' };
      const later = entries.slice(i + 1).some((x) => x.seq === expectedSeq);
      return { ok: false, atSeq: expectedSeq, problem: later ? 'reordered' : 'deleted' };
    }
    if (e.prevHash !== expectedPrev) {
      if (i === 0 && opts.after === undefined) return { ok: false, atSeq: e.seq, problem: 'bad-genesis' };
      // The previous entry was rewritten together with its own hash.
      return { ok: false, atSeq: e.seq - 1, problem: 'edited' };
    }
    seen.set(e.seq, e.hash);
    expectedSeq = e.seq + 1;
    expectedPrev = e.hash;
  }
  const head = opts.expectedHead;
  if (head !== undefined) {
    if (head.seq >= expectedSeq) return { ok: false, atSeq: expectedSeq, problem: 'deleted' };
    const at = head.seq === opts.after?.seq ? opts.after.hash : seen.get(head.seq);
    if (at !== undefined && at !== head.hash) return { ok: false, atSeq: head.seq, problem: 'edited' };
  }
  return { ok: true, count: entries.length };
}

/** verifyChain that throws RS_GDPR_AUDIT_CHAIN_BROKEN naming the region, seq and problem. */
export function assertChain(entries: readonly AuditEntry[], opts: { after?: ChainPoint; expectedHead?: ChainPoint } = {}): number {
  const result = verifyChain(entries, opts);
  if (result.ok) return result.count;
  const region = entries[0]?.region ?? 'unknown region';
  throw new RegionsyncError('RS_GDPR_AUDIT_CHAIN_BROKEN', `audit ledger of ${region}: ${result.problem} at seq ${result.atSeq}`, {
    details: { region, atSeq: result.atSeq, problem: result.problem },
  });
}
