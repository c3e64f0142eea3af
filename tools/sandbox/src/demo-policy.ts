import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { findRepoRoot } from '@regionsync/stack';

/** The demo residency policy shipped with libs/gdpr (EU rows stay in the EU, users' PII redacted). */
export function demoPolicyPath(): string {
  const p = join(findRepoRoot(), 'libs', 'gdpr', 'policies', 'demo.yaml');
  if (!existsSync(p)) throw new Error(`demo policy missing at ${p}`);
  return p;
}
