// Fixed vocabulary for decision and audit reasons. Reasons end up in the audit ledger,
// in metrics labels and in logs read outside the row's jurisdiction, so they are never
// built from row values: a closed list keeps that true by construction.

export const EGRESS_REASONS = [
  'table-not-in-policy',
  'source-not-in-policy',
  'destination-not-in-policy',
  'destination-outside-jurisdiction',
  'pii-outside-jurisdiction',
  'pii-destination-denied',
  'pii-in-tombstone',
] as const;

export const INGRESS_REASONS = [
  'table-not-in-policy',
  'source-not-in-policy',
  'local-not-in-policy',
  'local-outside-jurisdiction',
  'unredacted-pii',
] as const;

export const MISPLACED_REASONS = ['written-outside-home', 'home-moved', 'unknown-home-region', 'local-not-in-policy'] as const;

export const ERASURE_REASONS = [
  'erasure-requested',
  'erasure-rows-deleted',
  'erasure-content-removed',
  'erasure-acknowledged',
  'erasure-completed',
  'erasure-failed',
  'erasure-late-change-refused',
] as const;

export type EgressReason = (typeof EGRESS_REASONS)[number];
export type IngressReason = (typeof INGRESS_REASONS)[number];
export type MisplacedReason = (typeof MISPLACED_REASONS)[number];
export type ErasureReason = (typeof ERASURE_REASONS)[number];
export type AuditReason = EgressReason | IngressReason | MisplacedReason | ErasureReason;

export const AUDIT_REASONS: ReadonlySet<string> = new Set<string>([
  ...EGRESS_REASONS,
  ...INGRESS_REASONS,
  ...MISPLACED_REASONS,
  ...ERASURE_REASONS,
]);

export function isAuditReason(value: unknown): value is AuditReason {
  return typeof value === 'string' && AUDIT_REASONS.has(value);
}
