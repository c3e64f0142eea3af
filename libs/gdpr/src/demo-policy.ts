// The sandbox demo's policy ships as policies/demo.yaml beside src/ and dist/, so the
// same file is what operators read, what the demo agent loads and what tests check.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parsePolicy } from './load-policy.js';
import type { Policy } from './policy-schema.js';

export const DEMO_POLICY_PATH = fileURLToPath(new URL('../policies/demo.yaml', import.meta.url));

/** Demo schema (columns per table) the demo policy is written for. */
export const DEMO_SCHEMA: Readonly<Record<string, readonly string[]>> = {
  'public.users': ['id', 'home_region', 'email', 'full_name', 'updated_at'],
  'public.orders': ['id', 'user_id', 'home_region', 'amount_cents', 'status', 'updated_at'],
  'public.products': ['id', 'name', 'price_cents', 'stock', 'updated_at'],
  'public.documents': ['id', 'user_id', 'home_region', 'title', 'cid', 's3_key', 'updated_at'],
};

export function demoPolicyYaml(): string {
  return readFileSync(DEMO_POLICY_PATH, 'utf8');
}

export function loadDemoPolicy(): Policy {
  return parsePolicy(demoPolicyYaml(), DEMO_POLICY_PATH);
}
