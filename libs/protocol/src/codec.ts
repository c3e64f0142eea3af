// JSON/UTF-8 codec for envelopes. decode is the trust boundary for everything that
// arrives over the bus: it must turn any byte string into either a valid Envelope or
// a RegionsyncError (so the consumer can dead-letter it) and never leak row values
// into error messages.
import type { z } from 'zod';
import { RegionsyncError } from './errors.js';
import { envelopeSchema, PROTOCOL_VERSION, type Envelope } from './envelope.js';
import { formatIssue, formatIssuePath } from './issue-format.js';
import { isValidChangeEnvelope } from './change-check.js';

export const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;

export type DecodeResult = { ok: true; value: Envelope } | { ok: false; error: RegionsyncError };

export interface Codec {
  readonly maxBytes: number;
  encode(envelope: Envelope): Uint8Array;
  decode(bytes: Uint8Array): Envelope;
  tryDecode(bytes: Uint8Array): DecodeResult;
}

export interface CodecOptions {
  maxBytes?: number;
}

function schemaError(error: z.ZodError): RegionsyncError {
  const first = error.issues[0];
  if (first === undefined) return new RegionsyncError('RS_PROTOCOL_SCHEMA', 'message does not match the envelope schema');
  return new RegionsyncError('RS_PROTOCOL_SCHEMA', formatIssue(first), {
    details: { path: formatIssuePath(first.path), issue: first.code, issueCount: error.issues.length },
  });
}

/** Validates an already-parsed value as an Envelope; throws RS_PROTOCOL_VERSION or RS_PROTOCOL_SCHEMA. */
export function parseEnvelope(value: unknown): Envelope {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const v = (value as { v?: unknown }).v;
    if (typeof v === 'number' && v !== PROTOCOL_VERSION) {
      const shown = Number.isSafeInteger(v) ? String(v) : 'non-integer';
      throw new RegionsyncError('RS_PROTOCOL_VERSION', `v: unsupported envelope version ${shown}, this build speaks ${PROTOCOL_VERSION}`, {
        details: { version: Number.isSafeInteger(v) ? v : null, supported: PROTOCOL_VERSION },
      });
    }
  }
  // The hot path (every replicated transaction, both ends) skips zod; zod still decides
  // and words every rejection.
  if (isValidChangeEnvelope(value)) return value;
  const parsed = envelopeSchema.safeParse(value);
  if (!parsed.success) throw schemaError(parsed.error);
  return parsed.data;
}

// V8's JSON.parse messages quote a snippet of the input; keep only the position.
function jsonPosition(e: unknown): string {
  const m = e instanceof Error ? /position (\d+)/.exec(e.message) : null;
  return m ? ` at position ${m[1]}` : '';
}

export function createCodec(options: CodecOptions = {}): Codec {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new RegionsyncError('RS_CONFIG_INVALID', 'maxBytes: expected a positive integer');
  }
  const encoder = new TextEncoder();
  const decoder = new TextDecoder('utf-8', { fatal: true });

  function tooLarge(size: number, direction: 'encoded' | 'received'): RegionsyncError {
    return new RegionsyncError('RS_PROTOCOL_TOO_LARGE', `${direction} message is ${size} bytes, limit is ${maxBytes} bytes`, {
      details: { size, limit: maxBytes },
    });
  }

  function encode(envelope: Envelope): Uint8Array {
    const valid = parseEnvelope(envelope);
    const bytes = encoder.encode(JSON.stringify(valid));
    if (bytes.byteLength > maxBytes) throw tooLarge(bytes.byteLength, 'encoded');
    return bytes;
  }

  function decodeUnsafe(bytes: Uint8Array): Envelope {
    if (!(bytes instanceof Uint8Array)) {
      throw new RegionsyncError('RS_PROTOCOL_DECODE', 'message: expected bytes (Uint8Array)');
    }
    if (bytes.byteLength > maxBytes) throw tooLarge(bytes.byteLength, 'received');
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      throw new RegionsyncError('RS_PROTOCOL_DECODE', 'message is not valid UTF-8');
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      // The SyntaxError is not attached as cause: its message quotes the input.
      throw new RegionsyncError('RS_PROTOCOL_DECODE', `message is not valid JSON${jsonPosition(e)}`);
    }
    return parseEnvelope(value);
  }

  function decode(bytes: Uint8Array): Envelope {
    try {
      return decodeUnsafe(bytes);
    } catch (e) {
      if (e instanceof RegionsyncError) throw e;
      // Anything else (e.g. stack exhaustion on absurd nesting) is still a poison message.
      throw new RegionsyncError('RS_PROTOCOL_DECODE', 'message could not be decoded');
    }
  }

  function tryDecode(bytes: Uint8Array): DecodeResult {
    try {
      return { ok: true, value: decode(bytes) };
    } catch (e) {
      return { ok: false, error: e as RegionsyncError };
    }
  }

  return { maxBytes, encode, decode, tryDecode };
}
