/** Exponential backoff with jitter, capped, for reconnect and retry loops. */
export function backoff(attempt: number, initialMs = 200, maxMs = 10_000): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

// Retries of an apply transaction that lost to a concurrent local write, before the
// message's delivery fails (and the bus retries it with its own backoff).
export const CONTENTION_ATTEMPTS = 20;

/** Pause before the attempt-th retry (attempt >= 1) after losing to a local write: 1, 2, 4 … 50 ms, jittered by half. */
export function contentionPauseMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(50, 2 ** (attempt - 1));
  return base / 2 + random() * (base / 2);
}
