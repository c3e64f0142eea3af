// The three residency decisions the agent takes for every captured or received row:
// egress (per destination, at capture), ingress (again at apply: defence in depth) and
// the misplaced/moved-row check (at capture, for rows living outside their home).
// All are pure: the caller publishes, applies, purges, audits and counts.
import type { AuditKind } from '@regionsync/protocol';
import type { MisplacedMode, PiiAction } from './policy-schema.js';
import type { Policy } from './policy-schema.js';
import type { EgressReason, IngressReason, MisplacedReason } from './reasons.js';
import { isHashedPii } from './redaction.js';
import {
  jurisdictionOf,
  mayLiveIn,
  piiColumnsPresent,
  piiVerdict,
  residencyOf,
  tablePolicyOf,
  type RowValues,
} from './residency.js';

export interface EgressInput {
  table: string;
  /** New tuple for insert/update; the key (old row) for delete. */
  row: RowValues;
  sourceRegion: string;
  destination: string;
}

export type EgressDecision =
  | { action: 'send' }
  | {
      action: 'redact';
      /** PII columns to replace (present, non-NULL), sorted; list them in `RowChange.redacted`. */
      columns: string[];
      /** Column → redact|hash, for applyRedaction. */
      actions: Record<string, PiiAction>;
      reason: 'pii-outside-jurisdiction' | 'pii-destination-denied';
    }
  | { action: 'withhold'; reason: EgressReason };

/** Egress rule: see README "Decision rules". Unknown table/region fails closed (withhold). */
export function egressDecision(policy: Policy, input: EgressInput): EgressDecision {
  const { table, row, sourceRegion, destination } = input;
  const t = tablePolicyOf(policy, table);
  if (t === undefined) return { action: 'withhold', reason: 'table-not-in-policy' };
  if (jurisdictionOf(policy, sourceRegion) === undefined) return { action: 'withhold', reason: 'source-not-in-policy' };
  const destJurisdiction = jurisdictionOf(policy, destination);
  if (destJurisdiction === undefined) return { action: 'withhold', reason: 'destination-not-in-policy' };
  const residency = residencyOf(policy, table, row, sourceRegion);
  if (!mayLiveIn(policy, residency, destJurisdiction)) {
    return { action: 'withhold', reason: 'destination-outside-jurisdiction' };
  }
  const columns = piiColumnsPresent(policy, table, row);
  if (columns.length === 0) return { action: 'send' };
  const verdict = piiVerdict(policy, table, row, sourceRegion, destination);
  if (verdict.allowed) return { action: 'send' };
  const actions: Record<string, PiiAction> = {};
  for (const c of columns) actions[c] = t.pii[c] ?? 'redact';
  return { action: 'redact', columns, actions, reason: verdict.reason };
}

export interface IngressInput {
  table: string;
  /** Values as received (after the sender's redaction); the key for delete. */
  row: RowValues;
  sourceRegion: string;
  localRegion: string;
}

export type IngressDecision =
  | { action: 'accept' }
  | { action: 'refuse'; reason: IngressReason; columns?: string[] };

/**
 * Ingress rule: the same residency and PII verdict as egress, recomputed by the
 * receiver. A row that may not live here, or carries PII values that should have been
 * NULL (redact) or a keyed hash (hash), is refused; the caller audits and counts it.
 */
export function ingressDecision(policy: Policy, input: IngressInput): IngressDecision {
  const { table, row, sourceRegion, localRegion } = input;
  const t = tablePolicyOf(policy, table);
  if (t === undefined) return { action: 'refuse', reason: 'table-not-in-policy' };
  const localJurisdiction = jurisdictionOf(policy, localRegion);
  if (localJurisdiction === undefined) return { action: 'refuse', reason: 'local-not-in-policy' };
  if (jurisdictionOf(policy, sourceRegion) === undefined) return { action: 'refuse', reason: 'source-not-in-policy' };
  const residency = residencyOf(policy, table, row, sourceRegion);
  if (!mayLiveIn(policy, residency, localJurisdiction)) {
    return { action: 'refuse', reason: 'local-outside-jurisdiction' };
  }
  const present = piiColumnsPresent(policy, table, row);
  if (present.length === 0) return { action: 'accept' };
  if (piiVerdict(policy, table, row, sourceRegion, localRegion).allowed) return { action: 'accept' };
  const leaked = present.filter((c) => t.pii[c] !== 'hash' || !isHashedPii(row[c]));
  return leaked.length === 0 ? { action: 'accept' } : { action: 'refuse', reason: 'unredacted-pii', columns: leaked };
}

export interface MisplacedInput {
  table: string;
  /** New tuple of a local-origin insert or update. */
  row: RowValues;
  localRegion: string;
  /** Old tuple of an update, when known (REPLICA IDENTITY or the home column in the key). */
  oldRow?: RowValues;
}

export type MisplacedDecision =
  | { action: 'ok' }
  | {
      action: MisplacedMode;
      /** Jurisdiction the row belongs to now. */
      homeJurisdiction: string;
      reason: MisplacedReason;
      /** Regions of the home jurisdiction other than this one (normal egress delivers there). */
      forwardTo: string[];
      /** Regions that hold (or may hold) a copy outside the row's jurisdiction: purged on relocate. */
      strayIn: string[];
    };

/**
 * Misplaced/moved-row rule for a local-origin write (see README): `ok` when the row
 * may live in `localRegion` and did not leave another jurisdiction; otherwise the
 * table's `misplaced` mode (written outside its home) or `moved` mode (home changed
 * jurisdiction). An unknown home value is always `report`: there is nowhere to relocate to.
 */
export function misplacedDecision(policy: Policy, input: MisplacedInput): MisplacedDecision {
  const { table, row, localRegion, oldRow } = input;
  const t = tablePolicyOf(policy, table);
  if (t === undefined || t.residency.kind === 'global') return { action: 'ok' };
  const local = jurisdictionOf(policy, localRegion);
  if (local === undefined) {
    return { action: 'report', homeJurisdiction: '', reason: 'local-not-in-policy', forwardTo: [], strayIn: [] };
  }
  const now = residencyOf(policy, table, row, localRegion);
  if (now.kind === 'global') return { action: 'ok' };
  if (now.unknownHome === true) {
    return { action: 'report', homeJurisdiction: local, reason: 'unknown-home-region', forwardTo: [], strayIn: [] };
  }
  const home = now.jurisdiction;
  const before = oldRow === undefined ? undefined : residencyOf(policy, table, oldRow, localRegion);
  const oldHome = before?.kind === 'jurisdiction' && before.unknownHome !== true ? before.jurisdiction : undefined;
  const moved = oldHome !== undefined && oldHome !== home;
  const allRegions = Object.keys(policy.regions).sort();
  const allowedNow = (r: string): boolean => mayLiveIn(policy, now, policy.regions[r] ?? '');
  // Copies that may exist where the row may no longer live: the old home's regions (every
  // region when the old jurisdiction was open), and this region when it is outside the home.
  const stray = new Set<string>(
    moved && before !== undefined ? allRegions.filter((r) => mayLiveIn(policy, before, policy.regions[r] ?? '') && !allowedNow(r)) : [],
  );
  if (!allowedNow(localRegion)) stray.add(localRegion);
  if (stray.size === 0) return { action: 'ok' };
  return {
    action: moved ? t.moved : t.misplaced,
    homeJurisdiction: home,
    reason: moved ? 'home-moved' : 'written-outside-home',
    forwardTo: allRegions.filter((r) => r !== localRegion && allowedNow(r)),
    strayIn: [...stray].sort(),
  };
}

type AuditedDecision = EgressDecision | IngressDecision | MisplacedDecision;

/**
 * Audit kind for a decision, or undefined when nothing is audited (send, accept, ok).
 * `report` is audited as `withheld`: the protocol has no `misplaced` kind, and the
 * row is held back from where it should not be while an operator looks at it.
 */
export function auditKindFor(decision: AuditedDecision): AuditKind | undefined {
  switch (decision.action) {
    case 'withhold':
    case 'report':
      return 'withheld';
    case 'redact':
      return 'redacted';
    case 'refuse':
      return 'refused';
    case 'relocate':
      return 'relocated';
    default:
      return undefined;
  }
}
