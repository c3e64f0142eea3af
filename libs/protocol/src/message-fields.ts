// Field schemas shared by several message bodies. Every custom message here is an
// expectation, never an echo of the input: codec errors must not leak row values.
import { z } from 'zod';

/** Milliseconds since the Unix epoch. */
export const epochMsSchema = z.number().int().nonnegative();

// PostgreSQL commit timestamps carry microseconds; Date would drop them, so they
// travel as ISO 8601 strings.
export const isoTimestampSchema = z
  .string()
  .datetime({ offset: true, message: 'ISO 8601 timestamp with offset, e.g. 2024-05-01T12:00:00.123456Z' });

// Quoted identifiers may contain almost anything, so only the shape is enforced.
export const tableNameSchema = z
  .string()
  .max(200)
  .regex(/^[^.\s]+\.[^.\s]+$/, { message: 'table name as schema.table' });

// Zod silently drops a "__proto__" record key; rejecting it keeps rows lossless.
export const columnNameSchema = z
  .string()
  .min(1)
  .max(200)
  .refine((name) => name !== '__proto__', { message: 'column name other than __proto__' });

/** PostgreSQL text representation of a value, or SQL NULL. Lossless for every type. */
export const cellValueSchema = z.string().nullable();
export type CellValue = z.infer<typeof cellValueSchema>;

/** Column → value; identifies a row (primary key or replica identity columns). */
export const rowKeySchema = z.record(columnNameSchema, cellValueSchema);
export type RowKey = z.infer<typeof rowKeySchema>;

export const requestIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, { message: 'request id of 1-128 characters [A-Za-z0-9._:-]' });

export const hexHashSchema = z
  .string()
  .regex(/^[0-9a-f]{16,128}$/, { message: 'lower-case hex hash of 16-128 digits' });

export const REGION_MODES = ['starting', 'connected', 'autonomous', 'catching-up', 'draining', 'refusing'] as const;
export const regionModeSchema = z.enum(REGION_MODES);
export type RegionMode = z.infer<typeof regionModeSchema>;

/** Seconds a region is behind each source region. */
export const lagSecondsSchema = z.record(z.string().min(1).max(200), z.number().finite().nonnegative());

/** Short operator-facing text (alarms, reasons, details): bounded so it cannot carry bulk data. */
export const shortTextSchema = z.string().max(1000);
