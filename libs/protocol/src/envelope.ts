// The envelope every bus message travels in, discriminated on `kind`.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  auditEventBodySchema,
  conflictReportBodySchema,
  controlBodySchema,
} from './control-messages.js';
import { epochMsSchema } from './message-fields.js';
import {
  cacheInvalidationBodySchema,
  changeBodySchema,
  contentPinBodySchema,
  contentStatusBodySchema,
  heartbeatBodySchema,
} from './messages.js';
import { messageId, regionSchema } from './names.js';

export const PROTOCOL_VERSION = 1;

export const MESSAGE_ID_PATTERN = /^[A-Za-z0-9._:/@-]{1,256}$/;
export const messageIdSchema = z.string().regex(MESSAGE_ID_PATTERN, { message: 'message id of 1-256 characters [A-Za-z0-9._:/@-]' });

function envelopeOf<K extends string, B extends z.ZodTypeAny>(kind: K, body: B) {
  return z
    .object({
      v: z.literal(PROTOCOL_VERSION),
      kind: z.literal(kind),
      id: messageIdSchema,
      source: regionSchema,
      sentAt: epochMsSchema,
      body,
    })
    .strict();
}

export const changeEnvelopeSchema = envelopeOf('change', changeBodySchema);
export const heartbeatEnvelopeSchema = envelopeOf('heartbeat', heartbeatBodySchema);
export const cacheInvalidationEnvelopeSchema = envelopeOf('cache-invalidation', cacheInvalidationBodySchema);
export const contentPinEnvelopeSchema = envelopeOf('content-pin', contentPinBodySchema);
export const contentStatusEnvelopeSchema = envelopeOf('content-status', contentStatusBodySchema);
export const controlEnvelopeSchema = envelopeOf('control', controlBodySchema);
export const conflictReportEnvelopeSchema = envelopeOf('conflict-report', conflictReportBodySchema);
export const auditEventEnvelopeSchema = envelopeOf('audit-event', auditEventBodySchema);

export const envelopeSchema = z.discriminatedUnion('kind', [
  changeEnvelopeSchema,
  heartbeatEnvelopeSchema,
  cacheInvalidationEnvelopeSchema,
  contentPinEnvelopeSchema,
  contentStatusEnvelopeSchema,
  controlEnvelopeSchema,
  conflictReportEnvelopeSchema,
  auditEventEnvelopeSchema,
]);

export type Envelope = z.infer<typeof envelopeSchema>;
export type EnvelopeKind = Envelope['kind'];
export type EnvelopeOf<K extends EnvelopeKind> = Extract<Envelope, { kind: K }>;
export type BodyOf<K extends EnvelopeKind> = EnvelopeOf<K>['body'];

export type ChangeEnvelope = EnvelopeOf<'change'>;
export type HeartbeatEnvelope = EnvelopeOf<'heartbeat'>;
export type CacheInvalidationEnvelope = EnvelopeOf<'cache-invalidation'>;
export type ContentPinEnvelope = EnvelopeOf<'content-pin'>;
export type ContentStatusEnvelope = EnvelopeOf<'content-status'>;
export type ControlEnvelope = EnvelopeOf<'control'>;
export type ConflictReportEnvelope = EnvelopeOf<'conflict-report'>;
export type AuditEventEnvelope = EnvelopeOf<'audit-event'>;

export const ENVELOPE_KINDS: readonly EnvelopeKind[] = envelopeSchema.options.map((o) => o.shape.kind.value);

export function isEnvelopeKind(value: unknown): value is EnvelopeKind {
  return typeof value === 'string' && (ENVELOPE_KINDS as readonly string[]).includes(value);
}

/**
 * Builds an envelope stamped now. Without `id`, a change gets its deterministic
 * idempotency id (source, commit LSN, chunk) and every other kind a random UUID.
 * Validation happens in `codec.encode`.
 */
export function makeEnvelope<K extends EnvelopeKind>(kind: K, source: string, body: BodyOf<K>, id?: string): EnvelopeOf<K> {
  const envelope = {
    v: PROTOCOL_VERSION,
    kind,
    id: id ?? defaultId(kind, body),
    source,
    sentAt: Date.now(),
    body,
  };
  // TS cannot correlate K with the body through Extract; the fields above match by construction.
  return envelope as unknown as EnvelopeOf<K>;
}

function defaultId(kind: EnvelopeKind, body: unknown): string {
  if (kind === 'change') {
    const change = body as BodyOf<'change'>;
    return messageId(change.sourceRegion, change.commitLsn, change.chunk.index);
  }
  return randomUUID();
}
