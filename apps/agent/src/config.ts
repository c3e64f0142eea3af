import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatIssue, RegionsyncError } from '@regionsync/protocol';

const region = z.string().regex(/^[a-z][a-z0-9-]{1,62}$/, 'expected a region name such as eu-west-1');
const tableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/, 'expected schema.table');

/** The agent's configuration. Every field is described; unknown keys are rejected. */
export const agentConfigSchema = z
  .object({
    region: region.describe('This agent\'s region; must be one of `regions`'),
    regions: z.array(region).min(1).describe('Every region of the cluster (destinations of local changes, sources of remote ones)'),
    database: z.object({ url: z.string().url().describe('PostgreSQL URL of this region\'s primary (needs REPLICATION and table owner rights)') }).strict(),
    bus: z
      .object({
        kind: z.enum(['nats', 'kafka']).describe('Message bus: NATS JetStream or Kafka'),
        servers: z.array(z.string().min(1)).min(1).describe('NATS URLs or Kafka host:port brokers as reachable from this region'),
        prefix: z.string().regex(/^[a-z][a-z0-9-]*$/).default('regionsync').describe('Subject/topic prefix shared by the whole cluster'),
      })
      .strict(),
    tables: z
      .array(
        z
          .object({
            name: tableName.describe('Replicated table, schema-qualified (public.users)'),
            strategy: z.enum(['row-lww', 'column-lww']).default('row-lww').describe('Merge rule: whole-row or per-column last-writer-wins'),
            counterColumns: z.array(z.string().min(1)).default([]).describe('Columns merged as counters (sum of every region\'s increments)'),
          })
          .strict(),
      )
      .min(1)
      .describe('Tables replicated between regions; the same list in every region'),
    policyFile: z.string().min(1).optional().describe('Residency policy (YAML); without it every row may go to every region'),
    http: z
      .object({
        host: z.string().default('127.0.0.1').describe('Address of the health/metrics server'),
        port: z.number().int().min(0).max(65535).default(9400).describe('Port of the health/metrics server (0 = any free port)'),
      })
      .strict()
      .default({}),
    replication: z
      .object({
        chunkRows: z.number().int().min(1).max(100_000).default(500).describe('Rows per message; larger transactions are streamed in chunks'),
        maxPendingTransactions: z.number().int().min(1).default(1000).describe('Captured transactions awaiting bus confirmation before reading the WAL pauses'),
        maxPendingRows: z.number().int().min(1).default(20_000).describe('Rows of the captured transactions awaiting bus confirmation before reading the WAL pauses (bounds the memory they hold; a larger transaction still goes through, alone)'),
        idleHeartbeatMs: z.number().int().min(100).default(10_000).describe('When idle, emit a logical message this often so the slot keeps advancing'),
        maxClockSkewMs: z.number().int().min(0).default(30_000).describe('Largest clock lead accepted from a source before its changes are refused and an alarm raised'),
        applyMaxInFlight: z.number().int().min(1).default(64).describe('Messages fetched ahead of apply (backpressure bound; each can hold up to chunkRows rows)'),
        applyMaxBatch: z.number().int().min(1).max(10_000).default(64).describe('Fetched messages applied together in one local transaction per source'),
        // 1 MiB: in the replication bench (NATS, 200,000 rows) 2 MiB batches peaked at 184-268 MB
        // agent RSS (JS heap up to 143 MB) and 12,454-13,648 rows/s; 1 MiB at 173-179 MB
        // (heap 73 MB) and 14,229-15,087 rows/s, same runs, interleaved.
        applyMaxBatchBytes: z.number().int().min(1024).max(1024 * 1024 * 1024).default(1024 * 1024).describe('A batch of fetched messages stops growing at this many payload bytes, bounding the memory of applying large transactions'),
      })
      .strict()
      .default({}),
    heartbeatIntervalMs: z.number().int().min(100).default(5000).describe('How often the agent publishes its heartbeat'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').describe('pino log level'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.regions.includes(c.region)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['region'], message: `one of regions (${c.regions.join(', ')})` });
    if (new Set(c.regions).size !== c.regions.length) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['regions'], message: 'expected distinct regions' });
    const names = c.tables.map((t) => t.name);
    if (new Set(names).size !== names.length) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['tables'], message: 'expected each table once' });
  });

export type AgentConfig = z.infer<typeof agentConfigSchema>;

/** Environment variables that override the file, one per commonly varied field. */
export const ENV_OVERRIDES: Record<string, { path: string[]; parse: (v: string) => unknown }> = {
  REGIONSYNC_REGION: { path: ['region'], parse: (v) => v },
  REGIONSYNC_REGIONS: { path: ['regions'], parse: (v) => v.split(',').map((s) => s.trim()).filter(Boolean) },
  REGIONSYNC_DATABASE_URL: { path: ['database', 'url'], parse: (v) => v },
  REGIONSYNC_BUS_KIND: { path: ['bus', 'kind'], parse: (v) => v },
  REGIONSYNC_BUS_SERVERS: { path: ['bus', 'servers'], parse: (v) => v.split(',').map((s) => s.trim()).filter(Boolean) },
  REGIONSYNC_HTTP_PORT: { path: ['http', 'port'], parse: (v) => Number(v) },
  REGIONSYNC_POLICY_FILE: { path: ['policyFile'], parse: (v) => v },
  REGIONSYNC_LOG_LEVEL: { path: ['logLevel'], parse: (v) => v },
};

/**
 * Pure: the configuration from the environment and the contents of the config file.
 * Throws RS_CONFIG_INVALID naming every bad field and what was expected (never values).
 */
export function resolveConfig(env: Record<string, string | undefined>, files: { configYaml?: string; configPath?: string } = {}): AgentConfig {
  let raw: unknown = {};
  if (files.configYaml !== undefined) {
    try {
      raw = parseYaml(files.configYaml) ?? {};
    } catch (err) {
      throw new RegionsyncError('RS_CONFIG_INVALID', `${files.configPath ?? 'config'}: not valid YAML (${err instanceof Error ? err.message.split('\n')[0] : 'parse error'})`, { cause: err });
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new RegionsyncError('RS_CONFIG_INVALID', `${files.configPath ?? 'config'}: expected a mapping at the top level`);
  }
  const merged = structuredClone(raw) as Record<string, unknown>;
  for (const [name, o] of Object.entries(ENV_OVERRIDES)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    let node = merged;
    for (const k of o.path.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
    node[o.path.at(-1)!] = o.parse(v);
  }
  const res = agentConfigSchema.safeParse(merged);
  if (!res.success) {
    const problems = res.error.issues.map((i) => formatIssue(i));
    throw new RegionsyncError('RS_CONFIG_INVALID', `${files.configPath ?? 'config'}: ${problems.join('; ')}`, { details: { problems } });
  }
  return res.data;
}
