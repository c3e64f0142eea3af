// Test-only: stop a broker of the shared stack by its pid file and bring it back with the
// stack's own `up()`, waiting for health with a deadline. Used by the broker-restart test.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveLayout, up } from '@regionsync/stack';
import { waitUntil } from '../backoff.js';

export type BrokerName = 'nats' | 'kafka';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function brokerPid(broker: BrokerName): number {
  const file = join(resolveLayout().stateDir, 'run', `${broker}.pid`);
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]?.trim());
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) throw new Error(`${broker} is not running (pid file ${file})`);
  return pid;
}

/** SIGTERM, then SIGKILL if it has not exited within the deadline. */
export async function stopBroker(broker: BrokerName, timeoutMs = 60_000): Promise<void> {
  const pid = brokerPid(broker);
  process.kill(pid, 'SIGTERM');
  if (await waitUntil(() => !alive(pid), timeoutMs, 100)) return;
  process.kill(pid, 'SIGKILL');
  if (!(await waitUntil(() => !alive(pid), 10_000, 100))) throw new Error(`${broker} (pid ${pid}) did not stop`);
}

/** `up()` starts whatever is not running and returns once every service is healthy. */
export async function startBroker(broker: BrokerName, timeoutMs = 180_000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${broker} did not become healthy within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([up(), deadline]);
  } finally {
    clearTimeout(timer);
  }
  brokerPid(broker);
}
