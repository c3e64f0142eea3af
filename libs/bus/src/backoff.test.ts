import { describe, expect, it } from 'vitest';
import { backoffDelay, sleep, waitUntil } from './backoff.js';

describe('backoffDelay', () => {
  const policy = { initialMs: 100, maxMs: 2_000 };
  it('grows exponentially and is capped', () => {
    const mid = () => 0.5;
    expect(backoffDelay(policy, 0, mid)).toBe(75);
    expect(backoffDelay(policy, 1, mid)).toBe(150);
    expect(backoffDelay(policy, 3, mid)).toBe(600);
    expect(backoffDelay(policy, 10, mid)).toBe(1_500);
    expect(backoffDelay(policy, 1_000, mid)).toBe(1_500);
  });
  it('stays within [exp/2, exp]', () => {
    for (let a = 0; a < 20; a++) {
      const exp = Math.min(2_000, 100 * 2 ** a);
      expect(backoffDelay(policy, a, () => 0)).toBe(Math.round(exp / 2));
      expect(backoffDelay(policy, a, () => 1)).toBe(exp);
    }
  });
});

describe('sleep', () => {
  it('returns early when aborted', async () => {
    const ac = new AbortController();
    const t = Date.now();
    const p = sleep(10_000, ac.signal);
    ac.abort();
    await p;
    expect(Date.now() - t).toBeLessThan(1_000);
  });
});

describe('waitUntil', () => {
  it('reports whether the condition became true before the deadline', async () => {
    let n = 0;
    expect(await waitUntil(() => ++n > 3, 1_000, 1)).toBe(true);
    expect(await waitUntil(() => false, 30, 5)).toBe(false);
  });
});
