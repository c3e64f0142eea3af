// Checks the policy against the live database schema at agent start. A policy that
// names a column the table lacks would silently mis-route (an absent home-region
// column means "unknown home") or leak (an absent PII column is never redacted), so
// the agent refuses to start on any problem returned here.
import type { Policy } from './policy-schema.js';

/**
 * `liveColumns` maps `schema.table` to its column names (replicated tables only).
 * Returns human-readable problems naming table, policy key and column; empty when fine.
 */
export function checkPolicyAgainstSchema(policy: Policy, liveColumns: Readonly<Record<string, readonly string[]>>): string[] {
  const problems: string[] = [];
  for (const [table, t] of Object.entries(policy.tables)) {
    const columns = Object.hasOwn(liveColumns, table) ? liveColumns[table] : undefined;
    if (columns === undefined) {
      problems.push(`tables.${table}: table not found in the database`);
      continue;
    }
    const has = new Set(columns);
    const need = (key: string, column: string | undefined): void => {
      if (column !== undefined && !has.has(column)) problems.push(`tables.${table}.${key}: column ${column} not found in ${table}`);
    };
    if (t.residency.kind === 'home-region') need('residency.homeRegionColumn', t.residency.column);
    need('subjectColumn', t.subjectColumn);
    for (const column of Object.keys(t.pii)) need(`pii.${column}`, column);
    need('exceptions.consentColumn', t.consentColumn);
  }
  for (const table of Object.keys(liveColumns).sort()) {
    if (!Object.hasOwn(policy.tables, table)) {
      problems.push(`tables.${table}: replicated table is not in the policy (its changes would be withheld from every region)`);
    }
  }
  return problems;
}
