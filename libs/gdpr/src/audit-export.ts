// Exports of a region's audit ledger for auditors: CSV for spreadsheets and JSON
// Lines that can be parsed back and re-verified with verifyChain.
import { RegionsyncError, auditEventBodySchema, formatIssue } from '@regionsync/protocol';
import { canonicalJson } from './canonical-json.js';
import type { AuditEntry } from './audit-chain.js';

export const AUDIT_CSV_COLUMNS = ['region', 'seq', 'at', 'kind', 'table', 'key', 'destination', 'reason', 'prevHash', 'hash'] as const;

function csvCell(value: string): string {
  // Spreadsheets execute cells starting with = + - @ (CSV injection); a leading quote
  // makes them text. Only table names could start so; keys are JSON objects.
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** RFC 4180 CSV with a header row; `key` is canonical JSON, `at` epoch milliseconds. */
export function toCsv(entries: readonly AuditEntry[]): string {
  const lines = [AUDIT_CSV_COLUMNS.join(',')];
  for (const e of entries) {
    const cells = [e.region, String(e.seq), String(e.at), e.kind, e.table, canonicalJson({ ...e.key }), e.destination ?? '', e.reason, e.prevHash, e.hash];
    lines.push(cells.map(csvCell).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** One canonical JSON object per line. */
export function toJsonLines(entries: readonly AuditEntry[]): string {
  return entries.map((e) => `${canonicalJson({ ...e, key: { ...e.key } })}\n`).join('');
}

/** Parses JSON Lines back into entries; throws RS_PROTOCOL_SCHEMA naming the line and field. */
export function parseJsonLines(text: string): AuditEntry[] {
  const out: AuditEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new RegionsyncError('RS_PROTOCOL_SCHEMA', `line ${i + 1}: expected a JSON object`);
    }
    const parsed = auditEventBodySchema.safeParse(value);
    if (!parsed.success) {
      throw new RegionsyncError('RS_PROTOCOL_SCHEMA', `line ${i + 1}: ${parsed.error.issues.map(formatIssue).join('; ')}`);
    }
    out.push(parsed.data);
  }
  return out;
}
