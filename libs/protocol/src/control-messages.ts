// Bodies of coordination messages: coordinator control actions, conflict reports
// and audit events. None of them carries row values (only keys), because they are
// read centrally, outside the row's jurisdiction.
import { z } from 'zod';
import { vectorClockSchema, versionSchema } from './hlc-format.js';
import {
  REGION_MODES,
  epochMsSchema,
  hexHashSchema,
  lagSecondsSchema,
  regionModeSchema,
  requestIdSchema,
  rowKeySchema,
  shortTextSchema,
  tableNameSchema,
} from './message-fields.js';
import { regionSchema } from './names.js';

// The coordinator adds 'unreachable' for regions whose heartbeats stopped.
export const CLUSTER_REGION_MODES = [...REGION_MODES, 'unreachable'] as const;

export const clusterRegionSchema = z
  .object({
    region: regionSchema,
    mode: z.enum(CLUSTER_REGION_MODES),
    lastSeen: epochMsSchema,
    lagSeconds: lagSecondsSchema,
  })
  .strict();
export type ClusterRegion = z.infer<typeof clusterRegionSchema>;

export const clusterViewSchema = z
  .object({
    action: z.literal('cluster-view'),
    regions: z.array(clusterRegionSchema),
    // Every region has seen everything up to this cut: safe point for tombstone GC.
    stableVclock: vectorClockSchema,
  })
  .strict();

export const modeChangeSchema = z
  .object({ action: z.literal('mode-change'), region: regionSchema, mode: regionModeSchema })
  .strict();

export const erasureRequestSchema = z
  .object({
    action: z.literal('erasure-request'),
    requestId: requestIdSchema,
    // Data-subject identifier as the erasure policy defines it.
    subject: z.string().min(1).max(500),
    tables: z.array(tableNameSchema).optional(),
  })
  .strict();

export const erasureAckSchema = z
  .object({
    action: z.literal('erasure-ack'),
    requestId: requestIdSchema,
    region: regionSchema,
    rowsErased: z.number().int().nonnegative(),
    completedAt: epochMsSchema,
  })
  .strict();

/** Key range for anti-entropy: `start` inclusive, `end` exclusive, either open. */
export const keyRangeSchema = z
  .object({ start: rowKeySchema.optional(), end: rowKeySchema.optional() })
  .strict();
export type KeyRange = z.infer<typeof keyRangeSchema>;

export const repairSchema = z
  .object({
    action: z.literal('repair'),
    requestId: requestIdSchema,
    table: tableNameSchema,
    region: regionSchema,
    range: keyRangeSchema.optional(),
  })
  .strict();

export const controlBodySchema = z.discriminatedUnion('action', [
  clusterViewSchema,
  modeChangeSchema,
  erasureRequestSchema,
  erasureAckSchema,
  repairSchema,
]);
export type ControlBody = z.infer<typeof controlBodySchema>;
export type ControlAction = ControlBody['action'];
export type ClusterViewBody = z.infer<typeof clusterViewSchema>;
export type ModeChangeBody = z.infer<typeof modeChangeSchema>;
export type ErasureRequestBody = z.infer<typeof erasureRequestSchema>;
export type ErasureAckBody = z.infer<typeof erasureAckSchema>;
export type RepairBody = z.infer<typeof repairSchema>;

export const conflictReportBodySchema = z
  .object({
    region: regionSchema,
    table: tableNameSchema,
    key: rowKeySchema,
    local: versionSchema,
    remote: versionSchema,
    winner: z.enum(['local', 'remote']),
    strategy: z.string().min(1).max(100),
    detectedAt: epochMsSchema,
  })
  .strict();
export type ConflictReportBody = z.infer<typeof conflictReportBodySchema>;

export const AUDIT_KINDS = ['withheld', 'redacted', 'refused', 'relocated', 'erasure-step'] as const;
/** prevHash of the first event in a region's audit chain. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

export const auditEventBodySchema = z
  .object({
    region: regionSchema,
    seq: z.number().int().nonnegative(),
    at: epochMsSchema,
    kind: z.enum(AUDIT_KINDS),
    table: tableNameSchema,
    key: rowKeySchema,
    destination: regionSchema.optional(),
    reason: shortTextSchema,
    prevHash: hexHashSchema,
    hash: hexHashSchema,
  })
  .strict();
export type AuditEventBody = z.infer<typeof auditEventBodySchema>;
export type AuditKind = AuditEventBody['kind'];
