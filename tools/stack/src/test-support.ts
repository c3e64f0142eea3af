import { resolveLayout } from './config.js';
import { setProxyEnabled } from './services/toxiproxy.js';
import { up } from './stack.js';
import type { StackEnv } from './stack-env.js';

let cached: Promise<StackEnv> | undefined;

/**
 * Bring the stack up if needed (installing on first use) and return its endpoints. Tests
 * call this; a service that cannot be started fails the test with the reason and the
 * command to run by hand.
 */
export function ensureStack(): Promise<StackEnv> {
  cached ??= up({ log: (m) => console.error(`[stack] ${m}`) }).catch((err: unknown) => {
    cached = undefined;
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`the regionsync stack is not available: ${why}\nStart it by hand with: npm run stack -- up`, { cause: err });
  });
  return cached;
}

export type Broker = 'nats' | 'kafka';

/** Cut one region's link to one broker (existing connections are dropped too). */
export function cutLink(region: string, broker: Broker): Promise<void> {
  return setProxyEnabled(resolveLayout(), `${broker}-${region}`, false);
}

export function restoreLink(region: string, broker: Broker): Promise<void> {
  return setProxyEnabled(resolveLayout(), `${broker}-${region}`, true);
}
