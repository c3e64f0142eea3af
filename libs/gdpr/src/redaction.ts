// Redaction of PII values for destinations their PII may not reach: NULL, or a keyed
// hash (HMAC-SHA256) so equal values still compare equal across regions without the
// value itself ever leaving its jurisdiction.
import { createHmac } from 'node:crypto';
import { RegionsyncError } from '@regionsync/protocol';
import type { PiiAction } from './policy-schema.js';
import type { RowValues } from './residency.js';

/** Prefix of hashed PII values; ingress uses it to tell a hash from a leaked value. */
export const HASHED_PII_PREFIX = 'hmac-sha256:';
const HASHED_PII_PATTERN = /^hmac-sha256:[0-9a-f]{64}$/;

export function hashPiiValue(value: string, key: Uint8Array | string): string {
  return HASHED_PII_PREFIX + createHmac('sha256', key).update(value, 'utf8').digest('hex');
}

export function isHashedPii(value: string | null | undefined): boolean {
  return typeof value === 'string' && HASHED_PII_PATTERN.test(value);
}

/**
 * Returns a copy of `row` with each listed column that is present replaced: `redact`
 * → NULL, `hash` → `hmac-sha256:<hex>` (NULL stays NULL). `mode` is one action for all
 * columns or the table's column → action map. Throws RS_GDPR_POLICY_INVALID when a hash
 * is needed and no key was given, rather than sending the value unredacted.
 */
export function applyRedaction(
  row: RowValues,
  columns: readonly string[],
  mode: PiiAction | Readonly<Record<string, PiiAction>>,
  hashKey?: Uint8Array | string,
): Record<string, string | null> {
  const out: Record<string, string | null> = { ...row };
  for (const column of columns) {
    if (!Object.hasOwn(out, column)) continue;
    const value = out[column];
    // A column missing from the map is redacted: the safe choice for an unknown column.
    const action: PiiAction = typeof mode === 'string' ? mode : Object.hasOwn(mode, column) ? (mode[column] ?? 'redact') : 'redact';
    if (action === 'redact' || value === null || value === undefined) {
      out[column] = null;
      continue;
    }
    if (hashKey === undefined || hashKey.length === 0) {
      throw new RegionsyncError('RS_GDPR_POLICY_INVALID', `hashKeyEnv: expected a hash key to hash PII column ${column}`);
    }
    // Already hashed (e.g. a row that arrived redacted and is forwarded again): keep it.
    out[column] = isHashedPii(value) ? value : hashPiiValue(value, hashKey);
  }
  return out;
}
