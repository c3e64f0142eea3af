import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.js';

function deferred() {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
}

describe('Batcher', () => {
  it('groups items added within the linger into one send', async () => {
    const sends: number[][] = [];
    const b = new Batcher<number>({ lingerMs: 5, maxItems: 100, maxBytes: 1e6, size: () => 1, send: async (items) => void sends.push(items) });
    await Promise.all([1, 2, 3].map((i) => b.add(i)));
    expect(sends).toEqual([[1, 2, 3]]);
  });

  it('keeps one send in flight and batches what arrives meanwhile', async () => {
    const sends: number[][] = [];
    const gates = [deferred(), deferred()];
    const b = new Batcher<number>({ lingerMs: 0, maxItems: 100, maxBytes: 1e6, size: () => 1, send: (items) => (sends.push(items), gates[sends.length - 1]!.promise) });
    const p1 = b.add(1);
    const rest = [2, 3, 4].map((i) => b.add(i));
    expect(sends).toEqual([[1]]);
    gates[0]!.resolve();
    await p1;
    await Promise.resolve();
    expect(sends).toEqual([[1], [2, 3, 4]]);
    gates[1]!.resolve();
    await Promise.all(rest);
  });

  it('splits by item count and bytes, but always sends an oversized item alone', async () => {
    const sends: number[][] = [];
    const b = new Batcher<number>({ lingerMs: 1, maxItems: 2, maxBytes: 10, size: (n) => n, send: async (items) => void sends.push(items) });
    await Promise.all([1, 2, 3, 20, 4].map((i) => b.add(i)));
    expect(sends.flat()).toEqual([1, 2, 3, 20, 4]);
    for (const s of sends) expect(s.length).toBeLessThanOrEqual(2);
    expect(sends).toContainEqual([20]);
  });

  it('rejects the callers of a failed send and everything queued behind it, not later items', async () => {
    let n = 0;
    const b = new Batcher<number>({ lingerMs: 0, maxItems: 1, maxBytes: 1e6, size: () => 1, send: async () => { if (++n === 1) throw new Error('boom'); } });
    const r = await Promise.allSettled([b.add(1), b.add(2)]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'rejected']);
    await expect(b.add(3)).resolves.toBeUndefined();
    expect(n).toBe(2);
  });

  it('flush waits for queued items', async () => {
    const sent: number[] = [];
    const b = new Batcher<number>({ lingerMs: 50, maxItems: 100, maxBytes: 1e6, size: () => 1, send: async (items) => void sent.push(...items) });
    void b.add(1);
    void b.add(2);
    await b.flush();
    expect(sent).toEqual([1, 2]);
    expect(b.pending).toBe(0);
  });
});
