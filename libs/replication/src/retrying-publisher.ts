import type { Logger } from 'pino';
import { isRetryable } from '@regionsync/protocol';
import type { ChangePublisher } from './capture-options.js';
import { errInfo } from './err-info.js';
import type { ReplicationMetrics } from './metrics.js';
import { backoff, sleep } from './retry.js';

/**
 * Capture's publish: every failure is retried (never skipped: the slot must not move past
 * an unconfirmed message) until capture stops; the error's retryable flag only sets the
 * pace. Every in-flight message retries on its own; one log line a second stands for all.
 */
export class RetryingPublisher {
  private lastRetryLog = 0;
  private suppressedRetryLogs = 0;

  constructor(private readonly o: { publisher: ChangePublisher; key: string; log: Logger; metrics?: ReplicationMetrics; signal: () => AbortSignal | undefined }) {}

  async publish(subject: string, data: Uint8Array, id: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.o.publisher.publish(subject, data, { id, key: this.o.key });
        return;
      } catch (err) {
        this.o.metrics?.busErrors.inc();
        const signal = this.o.signal();
        if (signal?.aborted) throw err;
        const now = Date.now();
        if (now - this.lastRetryLog >= 1000) {
          this.o.log.warn({ subject, id, attempt, retryable: isRetryable(err), err: errInfo(err), suppressed: this.suppressedRetryLogs }, 'publish failed; retrying');
          this.lastRetryLog = now;
          this.suppressedRetryLogs = 0;
        } else this.suppressedRetryLogs += 1;
        await sleep(isRetryable(err) ? backoff(attempt) : backoff(attempt + 5), signal);
      }
    }
  }
}
