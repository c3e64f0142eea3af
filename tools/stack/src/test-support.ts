import { resolveLayout } from './config.js';
import { startPostgres, stopPostgres } from './services/postgres.js';
import { addToxic, removeToxic, setProxyEnabled } from './services/toxiproxy.js';
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

const DROP_REPLIES = 'drop-replies';

/**
 * One region's requests still reach the broker but its replies are dropped, and each of
 * the region's connections is closed once nothing came back for `closeAfterMs`: the
 * broker does what it was asked, and the client never learns the outcome.
 */
export function dropReplies(region: string, broker: Broker, closeAfterMs: number): Promise<void> {
  return addToxic(resolveLayout(), `${broker}-${region}`, { name: DROP_REPLIES, type: 'timeout', stream: 'downstream', attributes: { timeout: closeAfterMs } });
}

export function restoreReplies(region: string, broker: Broker): Promise<void> {
  return removeToxic(resolveLayout(), `${broker}-${region}`, DROP_REPLIES);
}

/**
 * Stop one region's PostgreSQL as a crash would (immediate shutdown: sessions cut, no
 * checkpoint, crash recovery on the next start). Every database of that server goes away.
 */
export async function crashDatabase(region: string): Promise<void> {
  if (!(await stopPostgres(resolveLayout(), region, 'immediate'))) throw new Error(`PostgreSQL ${region} was not running`);
}

/**
 * Stop one region's PostgreSQL as an operator would (`pg_ctl stop -m fast`). Rejects if the
 * server has not shut down within pg_ctl's 60 s, naming what was still connected (the server
 * is then stopped at once, so the stack is not left half down).
 */
export async function shutDownDatabase(region: string): Promise<void> {
  if (!(await stopPostgres(resolveLayout(), region, 'fast'))) throw new Error(`PostgreSQL ${region} was not running`);
}

/** Start one region's PostgreSQL again (after crashDatabase or shutDownDatabase) and wait until it answers. */
export async function startDatabase(region: string): Promise<void> {
  const layout = resolveLayout();
  const i = layout.regions.indexOf(region);
  if (i < 0) throw new Error(`unknown region ${region}; the stack has ${layout.regions.join(', ')}`);
  await startPostgres(layout, i, (m) => console.error(`[stack] ${m}`));
}
