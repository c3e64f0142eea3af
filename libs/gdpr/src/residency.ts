// Where a row may live and where its PII may go. Pure lookups over the normalised
// policy; egress, ingress and the misplaced-row check all derive from these, so the
// sending and the receiving region always reach the same answer for the same row.
import { RegionsyncError } from '@regionsync/protocol';
import type { Policy, ResidencyMode, TablePolicy } from './policy-schema.js';

/** Column → PostgreSQL text value or NULL, as carried in `RowChange`. */
export type RowValues = Readonly<Record<string, string | null>>;

export type RowResidency =
  | { kind: 'global' }
  | {
      kind: 'jurisdiction';
      jurisdiction: string;
      /** Set when the home-region column named a region of the policy. */
      homeRegion?: string;
      /** Home-region value missing, NULL or not a policy region: fell back to the source's jurisdiction. */
      unknownHome?: true;
      /** Table absent from the policy: fail closed to the source's jurisdiction. */
      unlistedTable?: true;
    };

function own<V>(rec: Readonly<Record<string, V>>, key: string): V | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}

export function jurisdictionOf(policy: Policy, region: string): string | undefined {
  return own(policy.regions, region);
}

export function tablePolicyOf(policy: Policy, table: string): TablePolicy | undefined {
  return own(policy.tables, table);
}

/** Regions of a jurisdiction, sorted. */
export function regionsOf(policy: Policy, jurisdiction: string): string[] {
  return Object.keys(policy.regions)
    .filter((r) => policy.regions[r] === jurisdiction)
    .sort();
}

/** Throws RS_GDPR_POLICY_INVALID unless `region` is listed in the policy (call at agent start). */
export function assertRegionInPolicy(policy: Policy, region: string): string {
  const j = jurisdictionOf(policy, region);
  if (j === undefined) {
    throw new RegionsyncError('RS_GDPR_POLICY_INVALID', `regions: expected an entry for region ${region} (this agent's region)`);
  }
  return j;
}

/**
 * Residency of one row as written in `sourceRegion`. A home-region value that is not a
 * policy region falls back to the source's jurisdiction (the row stays where it was
 * written) and is flagged `unknownHome`. Throws if `sourceRegion` is not in the policy.
 */
export function residencyOf(policy: Policy, table: string, row: RowValues, sourceRegion: string): RowResidency {
  const sourceJurisdiction = jurisdictionOf(policy, sourceRegion);
  if (sourceJurisdiction === undefined) {
    throw new RegionsyncError('RS_GDPR_POLICY_INVALID', `regions: expected an entry for source region ${sourceRegion}`);
  }
  const t = tablePolicyOf(policy, table);
  if (t === undefined) return { kind: 'jurisdiction', jurisdiction: sourceJurisdiction, unlistedTable: true };
  switch (t.residency.kind) {
    case 'global':
      return { kind: 'global' };
    case 'fixed':
      return { kind: 'jurisdiction', jurisdiction: t.residency.jurisdiction };
    case 'home-region': {
      const home = own(row, t.residency.column);
      const j = typeof home === 'string' ? jurisdictionOf(policy, home) : undefined;
      if (home === undefined || home === null || j === undefined) {
        return { kind: 'jurisdiction', jurisdiction: sourceJurisdiction, unknownHome: true };
      }
      return { kind: 'jurisdiction', jurisdiction: j, homeRegion: home };
    }
  }
}

/** Residency mode of a jurisdiction; `strict` for one the policy does not know. */
export function residencyModeOf(policy: Policy, jurisdiction: string): ResidencyMode {
  return own(policy.jurisdictions, jurisdiction)?.residency ?? 'strict';
}

/**
 * May a row of this residency live in a region of `jurisdiction`? Global rows: yes.
 * Resident rows: in their own jurisdiction, and anywhere when that jurisdiction is
 * `open`. A row of a table missing from the policy never leaves (fail closed). An
 * unknown home falls back to the source's jurisdiction, mode included.
 */
export function mayLiveIn(policy: Policy, residency: RowResidency, jurisdiction: string): boolean {
  if (residency.kind === 'global' || residency.jurisdiction === jurisdiction) return true;
  if (residency.unlistedTable === true) return false;
  return residencyModeOf(policy, residency.jurisdiction) === 'open';
}

/** Regions that may hold the row (all regions for a global or open-jurisdiction row), sorted. */
export function allowedRegions(policy: Policy, table: string, row: RowValues, sourceRegion: string): string[] {
  const r = residencyOf(policy, table, row, sourceRegion);
  return Object.keys(policy.regions)
    .filter((region) => mayLiveIn(policy, r, policy.regions[region] ?? ''))
    .sort();
}

// PostgreSQL's text output for boolean true is 't'; a text column may hold 'true'.
export function isConsentValue(value: string | null | undefined): boolean {
  if (typeof value !== 'string') return false;
  const v = value.trim().toLowerCase();
  return v === 't' || v === 'true';
}

export type PiiVerdict = { allowed: true } | { allowed: false; reason: 'pii-outside-jurisdiction' | 'pii-destination-denied' };

/**
 * May the row's PII values reach `destination`? PII stays in its home jurisdiction: the
 * row's jurisdiction for resident rows, the source region's for global rows. A
 * destination rule `allowPii: false` always wins; otherwise `allowPii: true` or the
 * row's consent column lets PII cross the border. Assumes both regions are in the policy.
 */
export function piiVerdict(policy: Policy, table: string, row: RowValues, sourceRegion: string, destination: string): PiiVerdict {
  const t = tablePolicyOf(policy, table);
  if (t === undefined) return { allowed: false, reason: 'pii-outside-jurisdiction' };
  const rule = own(t.destinations, destination);
  if (rule?.allowPii === false) return { allowed: false, reason: 'pii-destination-denied' };
  const r = residencyOf(policy, table, row, sourceRegion);
  const piiHome = r.kind === 'global' ? jurisdictionOf(policy, sourceRegion) : r.jurisdiction;
  if (piiHome === jurisdictionOf(policy, destination)) return { allowed: true };
  if (rule?.allowPii === true) return { allowed: true };
  if (t.consentColumn !== undefined && isConsentValue(own(row, t.consentColumn))) return { allowed: true };
  return { allowed: false, reason: 'pii-outside-jurisdiction' };
}

/** PII columns of the table that are present in the row with a non-NULL value, sorted. */
export function piiColumnsPresent(policy: Policy, table: string, row: RowValues): string[] {
  const t = tablePolicyOf(policy, table);
  if (t === undefined) return [];
  return Object.keys(t.pii)
    .filter((c) => typeof own(row, c) === 'string')
    .sort();
}
