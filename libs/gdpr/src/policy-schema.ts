// Zod schema of the residency policy file and the normalised `Policy` it produces.
// Every custom message is an expectation ("expected ..." is added by formatIssue), so
// a rejected policy names the YAML path and what would have been accepted.
import { z } from 'zod';
import { columnNameSchema, regionSchema, tableNameSchema } from '@regionsync/protocol';

export const MISPLACED_MODES = ['report', 'relocate'] as const;
export const PII_ACTIONS = ['redact', 'hash'] as const;
export const RESIDENCY_MODES = ['strict', 'open'] as const;
export type MisplacedMode = (typeof MISPLACED_MODES)[number];
export type PiiAction = (typeof PII_ACTIONS)[number];
/**
 * How a jurisdiction's resident rows travel: `strict` rows never leave it; `open` rows
 * may go to every region, with their PII redacted outside the jurisdiction unless an
 * exception releases it.
 */
export type ResidencyMode = (typeof RESIDENCY_MODES)[number];

export type TableResidency =
  | { readonly kind: 'global' }
  | { readonly kind: 'home-region'; readonly column: string }
  | { readonly kind: 'fixed'; readonly jurisdiction: string };

export interface TablePolicy {
  readonly residency: TableResidency;
  readonly subjectColumn?: string;
  /** PII column → what happens to its value where the PII may not go. */
  readonly pii: Readonly<Record<string, PiiAction>>;
  readonly consentColumn?: string;
  readonly destinations: Readonly<Record<string, { readonly allowPii: boolean }>>;
  readonly misplaced: MisplacedMode;
  readonly moved: MisplacedMode;
}

export interface Policy {
  readonly version: 1;
  /** Region → jurisdiction. */
  readonly regions: Readonly<Record<string, string>>;
  readonly defaults: { readonly misplaced: MisplacedMode; readonly moved: MisplacedMode };
  /** Every jurisdiction used by a region → its residency mode (`strict` unless the file says otherwise). */
  readonly jurisdictions: Readonly<Record<string, { readonly residency: ResidencyMode }>>;
  readonly hashKeyEnv?: string;
  readonly tables: Readonly<Record<string, TablePolicy>>;
}

export const JURISDICTION_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;
export const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]{0,127}$/;

const jurisdictionSchema = z
  .string()
  .regex(JURISDICTION_PATTERN, { message: 'jurisdiction as a lowercase word matching ^[a-z][a-z0-9-]{0,31}$ (e.g. eu)' });
const modeSchema = z.enum(MISPLACED_MODES);

const homeRegionResidency = z.object({ homeRegionColumn: columnNameSchema }).strict();
const fixedResidency = z.object({ jurisdiction: jurisdictionSchema }).strict();
const RESIDENCY_EXPECTATION = 'global, { homeRegionColumn: <column> } or { jurisdiction: <name> }';

// A plain z.union would report "invalid value"; choosing the branch by its key lets
// the nested issue (e.g. an unknown key next to homeRegionColumn) surface with its path.
const residencySchema = z.unknown().transform((value, ctx): TableResidency => {
  if (value === 'global') return { kind: 'global' };
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const branch = 'homeRegionColumn' in value ? homeRegionResidency : 'jurisdiction' in value ? fixedResidency : undefined;
    if (branch !== undefined) {
      const parsed = branch.safeParse(value);
      if (parsed.success) {
        const data: { homeRegionColumn?: string; jurisdiction?: string } = parsed.data;
        return data.homeRegionColumn !== undefined
          ? { kind: 'home-region', column: data.homeRegionColumn }
          : { kind: 'fixed', jurisdiction: data.jurisdiction ?? '' };
      }
      for (const issue of parsed.error.issues) ctx.addIssue(issue);
      return z.NEVER;
    }
  }
  ctx.addIssue({ code: z.ZodIssueCode.custom, message: RESIDENCY_EXPECTATION });
  return z.NEVER;
});

const piiColumnSchema = z.object({ action: z.enum(PII_ACTIONS) }).strict();
const destinationRuleSchema = z.object({ allowPii: z.boolean() }).strict();
const exceptionsSchema = z
  .object({
    consentColumn: columnNameSchema.optional(),
    destinations: z.record(regionSchema, destinationRuleSchema).optional(),
  })
  .strict();

const tableSchema = z
  .object({
    residency: residencySchema,
    subjectColumn: columnNameSchema.optional(),
    pii: z.record(columnNameSchema, piiColumnSchema).optional(),
    exceptions: exceptionsSchema.optional(),
    misplaced: modeSchema.optional(),
    moved: modeSchema.optional(),
  })
  .strict();

const rawPolicySchema = z
  .object({
    version: z.literal(1),
    regions: z.record(regionSchema, jurisdictionSchema),
    defaults: z.object({ misplaced: modeSchema.optional(), moved: modeSchema.optional() }).strict().optional(),
    jurisdictions: z.record(jurisdictionSchema, z.object({ residency: z.enum(RESIDENCY_MODES) }).strict()).optional(),
    hashKeyEnv: z
      .string()
      .regex(ENV_NAME_PATTERN, { message: 'environment variable name matching ^[A-Z_][A-Z0-9_]*$' })
      .optional(),
    tables: z.record(tableNameSchema, tableSchema),
  })
  .strict();
type RawPolicy = z.infer<typeof rawPolicySchema>;

// Cross-field rules: a policy that parses but contradicts itself must not load, since
// its mistakes would only show up as data in the wrong place.
function crossCheck(raw: RawPolicy, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string): void => {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
  };
  const regionNames = Object.keys(raw.regions);
  if (regionNames.length === 0) issue(['regions'], 'at least one region: jurisdiction entry');
  const jurisdictions = new Set(Object.values(raw.regions));
  const known = [...jurisdictions].sort().join('|');
  for (const j of Object.keys(raw.jurisdictions ?? {})) {
    if (!jurisdictions.has(j)) issue(['jurisdictions', j], `a jurisdiction used by a region in regions (${known})`);
  }
  for (const [table, t] of Object.entries(raw.tables)) {
    const at = (...rest: string[]): string[] => ['tables', table, ...rest];
    const piiColumns = Object.keys(t.pii ?? {});
    const home = t.residency.kind === 'home-region' ? t.residency.column : undefined;
    if (t.residency.kind === 'fixed' && !jurisdictions.has(t.residency.jurisdiction)) {
      issue(at('residency', 'jurisdiction'), `a jurisdiction used by a region in regions (${known})`);
    }
    for (const column of piiColumns) {
      const action = t.pii?.[column]?.action;
      if (column === home) issue(at('pii', column), 'a column other than the home-region column (routing needs its value)');
      if (action === 'hash' && raw.hashKeyEnv === undefined) {
        issue(['hashKeyEnv'], `environment variable name (required because ${['tables', table, 'pii', column, 'action'].join('.')} is hash)`);
      }
    }
    if (t.subjectColumn !== undefined && piiColumns.includes(t.subjectColumn)) {
      issue(at('subjectColumn'), 'a column that is not listed under pii (erasure must find the row in every region)');
    }
    const ex = t.exceptions;
    if (ex === undefined) continue;
    if (piiColumns.length === 0) issue(at('exceptions'), 'exceptions only on a table that lists pii columns');
    if (ex.consentColumn !== undefined) {
      if (piiColumns.includes(ex.consentColumn)) issue(at('exceptions', 'consentColumn'), 'a column that is not listed under pii');
      if (ex.consentColumn === home) issue(at('exceptions', 'consentColumn'), 'a column other than the home-region column');
    }
    for (const region of Object.keys(ex.destinations ?? {})) {
      if (!Object.hasOwn(raw.regions, region)) issue(at('exceptions', 'destinations', region), 'a region listed in regions');
    }
  }
}

// Null-prototype records: lookups by names that come from the WAL or the bus (a table
// or region called "constructor") must never hit Object.prototype.
function record<V>(entries: Iterable<[string, V]>): Record<string, V> {
  const out: Record<string, V> = Object.create(null) as Record<string, V>;
  for (const [k, v] of entries) out[k] = v;
  return out;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}

function normalise(raw: RawPolicy): Policy {
  const defaults = { misplaced: raw.defaults?.misplaced ?? 'report', moved: raw.defaults?.moved ?? 'report' } as const;
  const tables = record(
    Object.entries(raw.tables).map(([name, t]): [string, TablePolicy] => [
      name,
      {
        residency: t.residency,
        ...(t.subjectColumn === undefined ? {} : { subjectColumn: t.subjectColumn }),
        pii: record(Object.entries(t.pii ?? {}).map(([c, p]): [string, PiiAction] => [c, p.action])),
        ...(t.exceptions?.consentColumn === undefined ? {} : { consentColumn: t.exceptions.consentColumn }),
        destinations: record(Object.entries(t.exceptions?.destinations ?? {}).map(([r, d]) => [r, { allowPii: d.allowPii }])),
        misplaced: t.misplaced ?? defaults.misplaced,
        moved: t.moved ?? defaults.moved,
      },
    ]),
  );
  return deepFreeze({
    version: 1,
    regions: record(Object.entries(raw.regions)),
    defaults,
    jurisdictions: record(
      [...new Set(Object.values(raw.regions))].sort().map((j): [string, { residency: ResidencyMode }] => [
        j,
        { residency: (raw.jurisdictions !== undefined && Object.hasOwn(raw.jurisdictions, j) ? raw.jurisdictions[j]?.residency : undefined) ?? 'strict' },
      ]),
    ),
    ...(raw.hashKeyEnv === undefined ? {} : { hashKeyEnv: raw.hashKeyEnv }),
    tables,
  });
}

export const policySchema = rawPolicySchema.superRefine(crossCheck).transform(normalise);
