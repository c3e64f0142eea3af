import { describe, expect, it } from 'vitest';
import { contentionPauseMs } from './retry.js';

describe('pause between apply attempts that lost to a local write', () => {
  it('doubles from 1 ms, is capped at 50 ms, and jitters within the upper half', () => {
    const low = (a: number) => contentionPauseMs(a, () => 0);
    const high = (a: number) => contentionPauseMs(a, () => 1);
    expect([1, 2, 3, 4, 5, 6, 7, 19].map(high)).toEqual([1, 2, 4, 8, 16, 32, 50, 50]);
    expect([1, 2, 7, 19].map(low)).toEqual([0.5, 1, 25, 25]);
  });

  it('keeps 20 attempts under a second in all, so a message is not held long before the bus retries it', () => {
    let total = 0;
    for (let a = 1; a < 20; a++) total += contentionPauseMs(a, () => 1);
    expect(total).toBeLessThan(1000);
    expect(total).toBeGreaterThan(500);
  });
});
