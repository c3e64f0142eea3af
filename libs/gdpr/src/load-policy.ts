// Loading the residency policy from YAML text or a file, its drift hash, and the key
// for hashed PII. Nothing here quotes the document back: errors give the path, the
// line/column for syntax problems, and the expectation.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { RegionsyncError, formatIssue } from '@regionsync/protocol';
import { canonicalJson, sha256Hex, type JsonValue } from './canonical-json.js';
import { policySchema, type Policy } from './policy-schema.js';

const MAX_ISSUES_SHOWN = 20;
const MAX_ALIASES = 100;
/** HMAC keys shorter than this make the keyed hash guessable by brute force. */
export const MIN_HASH_KEY_BYTES = 16;

function fail(source: string, problems: string[]): never {
  const shown = problems.slice(0, MAX_ISSUES_SHOWN);
  const more = problems.length > shown.length ? `; and ${problems.length - shown.length} more` : '';
  throw new RegionsyncError('RS_GDPR_POLICY_INVALID', `${source}: ${shown.join('; ')}${more}`, {
    details: { source, problems },
  });
}

/**
 * Parses and validates a policy document. Throws RS_GDPR_POLICY_INVALID naming every
 * problem as `path: expectation` (or `line:col: YAML syntax error (CODE)`).
 */
export function parsePolicy(yamlText: string, source = 'policy'): Policy {
  // prettyErrors off: the pretty form embeds the offending source line in the message.
  const lineCounter = new LineCounter();
  const doc = parseDocument(yamlText, { uniqueKeys: true, prettyErrors: false, lineCounter });
  if (doc.errors.length > 0) {
    fail(
      source,
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return `${pos.line}:${pos.col}: YAML syntax error (${e.code})`;
      }),
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch {
    fail(source, [`(root): expected a YAML document with at most ${MAX_ALIASES} alias expansions`]);
  }
  return validatePolicy(value, source);
}

/** Validates an already-parsed policy object (e.g. from JSON). */
export function validatePolicy(value: unknown, source = 'policy'): Policy {
  const parsed = policySchema.safeParse(value);
  if (!parsed.success) fail(source, parsed.error.issues.map(formatIssue));
  return parsed.data;
}

/** Reads and parses a policy file; an unreadable file is RS_CONFIG_FILE. */
export function loadPolicyFile(path: string): Policy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : 'unknown';
    throw new RegionsyncError('RS_CONFIG_FILE', `${path}: cannot read policy file (${code})`, { cause });
  }
  return parsePolicy(text, path);
}

/** The normalised policy as plain JSON (defaults filled in). */
export function policyToJson(policy: Policy): JsonValue {
  return JSON.parse(JSON.stringify(policy)) as JsonValue;
}

/**
 * sha256 (hex) of the canonical JSON of the normalised policy. Independent of key order,
 * comments and spelled-out defaults, so heartbeats can compare it across regions.
 */
export function policyHash(policy: Policy): string {
  return sha256Hex(canonicalJson(policyToJson(policy)));
}

/** True when some table hashes a PII column, i.e. the agent needs a hash key. */
export function needsHashKey(policy: Policy): boolean {
  return Object.values(policy.tables).some((t) => Object.values(t.pii).includes('hash'));
}

/**
 * Reads the HMAC key for `hash` PII columns from the environment variable the policy
 * names. Returns undefined when no column is hashed; throws RS_GDPR_POLICY_INVALID
 * (naming the variable, never its content) when it is needed but missing or short.
 */
export function hashKeyFromEnv(policy: Policy, env: Record<string, string | undefined> = process.env): Buffer | undefined {
  if (!needsHashKey(policy)) return undefined;
  const name = policy.hashKeyEnv ?? '';
  const value = Object.hasOwn(env, name) ? env[name] : undefined;
  if (value === undefined || Buffer.byteLength(value, 'utf8') < MIN_HASH_KEY_BYTES) {
    throw new RegionsyncError(
      'RS_GDPR_POLICY_INVALID',
      `hashKeyEnv: expected environment variable ${name} to hold a key of at least ${MIN_HASH_KEY_BYTES} bytes`,
    );
  }
  return Buffer.from(value, 'utf8');
}
