// Bodies of the data-path messages: changes, heartbeats, cache invalidations and
// content requests. Every object is strict: an unknown field means producer and
// consumer disagree about the contract, and guessing would risk residency.
import { z } from 'zod';
import { hlcSchema, vectorClockSchema, versionSchema } from './hlc-format.js';
import {
  cellValueSchema,
  columnNameSchema,
  epochMsSchema,
  isoTimestampSchema,
  lagSecondsSchema,
  regionModeSchema,
  requestIdSchema,
  rowKeySchema,
  shortTextSchema,
  tableNameSchema,
} from './message-fields.js';
import { lsnSchema, regionSchema } from './names.js';

export const ROW_OPS = ['insert', 'update', 'delete'] as const;
export const rowOpSchema = z.enum(ROW_OPS);
export type RowOp = z.infer<typeof rowOpSchema>;

/** Counter (delta) column: this region's running contribution as a decimal string. */
export const counterSchema = z
  .object({
    region: regionSchema,
    total: z.string().regex(/^-?\d+(\.\d+)?$/, { message: 'decimal number as a string' }),
    // The value the column held before any contribution (a row from before regionsync, or
    // written unstamped), as the writing region counted it: every receiver adds it once.
    base: z.string().regex(/^-?\d+$/, { message: 'integer as a string' }).optional(),
  })
  .strict();
export type Counter = z.infer<typeof counterSchema>;

export const rowChangeSchema = z
  .object({
    table: tableNameSchema,
    op: rowOpSchema,
    key: rowKeySchema,
    // New tuple; for a delete at most the residency (home) column of the removed row.
    values: z.record(columnNameSchema, cellValueSchema).optional(),
    // Columns whose unchanged TOASTed value was not in the WAL stream: keep local value.
    unchangedToast: z.array(columnNameSchema).optional(),
    counters: z.record(columnNameSchema, counterSchema).optional(),
    // PII columns blanked by egress policy: the receiver must not overwrite them.
    redacted: z.array(columnNameSchema).optional(),
    version: versionSchema,
  })
  .strict();
export type RowChange = z.infer<typeof rowChangeSchema>;

export const chunkSchema = z
  .object({ index: z.number().int().nonnegative(), last: z.boolean() })
  .strict();
export type Chunk = z.infer<typeof chunkSchema>;

/** One source transaction (or one chunk of it) for one destination region. */
export const changeBodySchema = z
  .object({
    sourceRegion: regionSchema,
    destination: regionSchema,
    commitLsn: lsnSchema,
    commitTime: isoTimestampSchema,
    xid: z.number().int().nonnegative(),
    hlc: hlcSchema,
    vclock: vectorClockSchema,
    chunk: chunkSchema,
    rows: z.array(rowChangeSchema),
    // Per table in `rows`: the source's column layout (`name:typeOid,…` in column order), so
    // the receiver detects a schema difference instead of mis-applying rows.
    schemas: z.record(z.string().min(1).max(200), z.string().max(20_000)).optional(),
  })
  .strict();
export type ChangeBody = z.infer<typeof changeBodySchema>;

export const dependencyHealthSchema = z
  .object({ ok: z.boolean(), detail: shortTextSchema.optional() })
  .strict();
export type DependencyHealth = z.infer<typeof dependencyHealthSchema>;

export const heartbeatBodySchema = z
  .object({
    region: regionSchema,
    mode: regionModeSchema,
    startedAt: epochMsSchema,
    lagSeconds: lagSecondsSchema,
    vclock: vectorClockSchema,
    slotRetainedWalBytes: z.number().int().nonnegative(),
    configHash: z.string().min(1).max(200),
    policyHash: z.string().min(1).max(200),
    deps: z.record(z.string().min(1).max(200), dependencyHealthSchema),
    pausedTables: z.array(tableNameSchema),
    alarms: z.array(shortTextSchema),
  })
  .strict();
export type HeartbeatBody = z.infer<typeof heartbeatBodySchema>;

export const cacheInvalidationBodySchema = z
  .object({
    sourceRegion: regionSchema,
    region: regionSchema,
    keys: z.array(z.string().min(1)).nonempty(),
    hlc: hlcSchema,
    commitLsn: lsnSchema.optional(),
  })
  .strict();
export type CacheInvalidationBody = z.infer<typeof cacheInvalidationBodySchema>;

export const s3ObjectSchema = z
  .object({ bucket: z.string().min(1).max(255), key: z.string().min(1).max(1024) })
  .strict();
export type S3Object = z.infer<typeof s3ObjectSchema>;

export const CONTENT_ACTIONS = ['pin', 'copy'] as const;

/** Ask a region to pin an IPFS CID (`pin`, needs cid) or copy an S3 object (`copy`, needs s3). */
export const contentPinBodySchema = z
  .object({
    action: z.enum(CONTENT_ACTIONS),
    requestId: requestIdSchema,
    sourceRegion: regionSchema,
    targetRegion: regionSchema,
    table: tableNameSchema,
    key: rowKeySchema,
    cid: z.string().regex(/^[A-Za-z0-9]{1,200}$/, { message: 'CID (base58 or base32 multibase)' }).optional(),
    s3: s3ObjectSchema.optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.action === 'pin' && body.cid === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['cid'], message: 'cid when action is pin' });
    }
    if (body.action === 'copy' && body.s3 === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['s3'], message: 's3 object when action is copy' });
    }
  });
export type ContentPinBody = z.infer<typeof contentPinBodySchema>;

export const CONTENT_STATUSES = ['pinned', 'copied', 'failed', 'withheld'] as const;

export const contentStatusBodySchema = z
  .object({
    requestId: requestIdSchema,
    region: regionSchema,
    status: z.enum(CONTENT_STATUSES),
    errorCode: z.string().regex(/^RS_[A-Z0-9_]+$/, { message: 'error code like RS_CONTENT_PIN' }).optional(),
  })
  .strict();
export type ContentStatusBody = z.infer<typeof contentStatusBodySchema>;
