// Turns zod issues into `path: expectation` messages. Zod's own messages may quote
// the rejected input (e.g. enum values), which could be a row value, so only the
// path, the schema's expectation and the received *type* are ever used.
import type { z } from 'zod';

const MAX_SEGMENT = 64;
const MAX_KEYS_SHOWN = 5;

// Path segments may be record keys (column or region names) taken from the input:
// bounded and stripped of control characters so a hostile key cannot flood logs.
function cleanSegment(segment: string | number): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  const s = String(segment).replace(/[\u0000-\u001f\u007f]/g, '?');
  return s.length > MAX_SEGMENT ? `${s.slice(0, MAX_SEGMENT)}…` : s;
}

export function formatIssuePath(path: ReadonlyArray<string | number>): string {
  return path.length === 0 ? '(root)' : path.map(cleanSegment).join('.');
}

function bound(kind: string, inclusive: boolean, value: number | bigint, type: string): string {
  const n = Number(value);
  switch (type) {
    case 'array':
    case 'set':
      return `expected ${kind === 'min' ? 'at least' : 'at most'} ${n} item${n === 1 ? '' : 's'}`;
    case 'string':
      return `expected ${kind === 'min' ? 'at least' : 'at most'} ${n} character${n === 1 ? '' : 's'}`;
    default: {
      const op = kind === 'min' ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<';
      return `expected ${type} ${op} ${n}`;
    }
  }
}

export function describeIssue(issue: z.ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.received === 'undefined'
        ? `required field missing (expected ${issue.expected})`
        : `expected ${issue.expected}, received ${issue.received}`;
    case 'invalid_literal':
      return issue.received === undefined
        ? `required field missing (expected ${JSON.stringify(issue.expected)})`
        : `expected ${JSON.stringify(issue.expected)}`;
    case 'invalid_enum_value':
      return `expected one of ${issue.options.map(String).join('|')}`;
    case 'invalid_union_discriminator':
      return `expected one of ${issue.options.map(String).join('|')}`;
    case 'unrecognized_keys': {
      const shown = issue.keys.slice(0, MAX_KEYS_SHOWN).map(cleanSegment).join(', ');
      const more = issue.keys.length > MAX_KEYS_SHOWN ? ` and ${issue.keys.length - MAX_KEYS_SHOWN} more` : '';
      return `unknown field${issue.keys.length === 1 ? '' : 's'} ${shown}${more}`;
    }
    case 'too_small':
      return bound('min', issue.inclusive, issue.minimum, issue.type);
    case 'too_big':
      return bound('max', issue.inclusive, issue.maximum, issue.type);
    case 'not_finite':
      return 'expected a finite number';
    case 'not_multiple_of':
      return `expected a multiple of ${Number(issue.multipleOf)}`;
    case 'invalid_string':
    case 'custom':
      // Every string check and refinement in this package carries an expectation message.
      return `expected ${issue.message}`;
    default:
      return 'invalid value';
  }
}

export function formatIssue(issue: z.ZodIssue): string {
  return `${formatIssuePath(issue.path)}: ${describeIssue(issue)}`;
}
