// Canonical JSON: object keys sorted at every depth, undefined members dropped, no
// whitespace. Policy hashes and audit hashes are computed over it, so two regions that
// loaded the same policy (whatever its key order) or hold the same ledger entry agree
// byte for byte.
import { createHash } from 'node:crypto';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue | undefined };

export function canonicalJson(value: JsonValue | undefined): string {
  if (value === undefined || value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (typeof value === 'object') {
    const parts: string[] = [];
    // Code-unit order, not locale order: identical on every host.
    for (const key of Object.keys(value).sort()) {
      const member = value[key];
      if (member === undefined) continue;
      parts.push(`${JSON.stringify(key)}:${canonicalJson(member)}`);
    }
    return `{${parts.join(',')}}`;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    // JSON.stringify would silently write null and two different values would collide.
    throw new TypeError('canonicalJson: non-finite number');
  }
  return JSON.stringify(value);
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
