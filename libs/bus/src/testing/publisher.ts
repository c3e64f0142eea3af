// Test-only publisher that behaves like replication capture: pipelined publishes in a
// window; on any failure it lets the window settle, then re-publishes in order from the
// first unconfirmed message (the broker drops the duplicates by id).
import { isRetryable } from '@regionsync/protocol';
import { backoffDelay, sleep } from '../backoff.js';
import type { Bus } from '../types.js';
import { payload } from './fixtures.js';

export interface PublishRunOptions {
  bus: Bus;
  subject: string;
  key: string;
  from: number; // inclusive, 1-based message numbers
  to: number; // inclusive
  window?: number;
  size?: number;
  signal?: AbortSignal;
  onConfirmed?: (n: number) => void;
  onRetry?: (err: unknown) => void;
}

export async function publishRange(o: PublishRunOptions): Promise<{ retries: number }> {
  const window = o.window ?? 100;
  let next = o.from; // first message not yet confirmed
  let retries = 0;
  while (next <= o.to) {
    if (o.signal?.aborted) throw new Error('publishRange aborted');
    const end = Math.min(o.to, next + window - 1);
    const batch: Promise<unknown>[] = [];
    for (let n = next; n <= end; n++) batch.push(o.bus.publish(o.subject, payload(n, o.size), { id: `${o.key}:${n}`, key: o.key }));
    const results = await Promise.allSettled(batch);
    const firstFail = results.findIndex((r) => r.status === 'rejected');
    const confirmedUpTo = firstFail === -1 ? end : next + firstFail - 1;
    for (let n = next; n <= confirmedUpTo; n++) o.onConfirmed?.(n);
    if (firstFail === -1) {
      next = end + 1;
      continue;
    }
    const err = (results[firstFail] as PromiseRejectedResult).reason;
    if (!isRetryable(err)) throw err;
    o.onRetry?.(err);
    next = confirmedUpTo + 1;
    await sleep(backoffDelay({ initialMs: 50, maxMs: 1_000 }, Math.min(retries++, 10)));
  }
  return { retries };
}
