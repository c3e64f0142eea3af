// Integration tests run against the real stack: bring it up (idempotent) before any test.
import { ensureStack } from './test-support.js';

export default async function setup(): Promise<void> {
  await ensureStack();
}
