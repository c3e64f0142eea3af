// Group commit for publishes: items added while a send is in flight (or within a short
// linger) go out together in the next send. Exactly one send is in flight at a time,
// which the idempotent Kafka producer needs for its sequence numbers, and each caller's
// promise settles only with the send that carried its item. A failed send also fails
// everything queued behind it, so a retry can never be overtaken (per-key order).

export interface BatcherOptions<T> {
  lingerMs: number;
  maxItems: number;
  maxBytes: number;
  size(item: T): number;
  send(items: T[]): Promise<void>;
}

interface Pending<T> {
  item: T;
  bytes: number;
  resolve(): void;
  reject(err: unknown): void;
}

export class Batcher<T> {
  private queue: Pending<T>[] = [];
  private queuedBytes = 0;
  private sending: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly opts: BatcherOptions<T>) {}

  get pending(): number {
    return this.queue.length;
  }

  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const bytes = this.opts.size(item);
      this.queue.push({ item, bytes, resolve, reject });
      this.queuedBytes += bytes;
      this.schedule();
    });
  }

  /** Resolves once everything added so far was sent (successfully or not). */
  async flush(): Promise<void> {
    while (this.queue.length > 0 || this.sending) {
      if (!this.sending) this.startSend();
      await this.sending;
    }
  }

  private full(): boolean {
    return this.queue.length >= this.opts.maxItems || this.queuedBytes >= this.opts.maxBytes;
  }

  private schedule(): void {
    if (this.sending) return; // the running send's completion picks the queue up
    if (this.full() || this.opts.lingerMs <= 0) {
      this.startSend();
      return;
    }
    this.timer ??= setTimeout(() => this.startSend(), this.opts.lingerMs);
  }

  /** Take the largest prefix of the queue within the item and byte limits (at least one item). */
  private take(): Pending<T>[] {
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && n < this.opts.maxItems) {
      const b = this.queue[n]!.bytes;
      if (n > 0 && bytes + b > this.opts.maxBytes) break;
      bytes += b;
      n += 1;
    }
    this.queuedBytes -= bytes;
    return this.queue.splice(0, n);
  }

  private startSend(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sending || this.queue.length === 0) return;
    const batch = this.take();
    this.sending = this.opts
      .send(batch.map((p) => p.item))
      .then(
        () => batch.forEach((p) => p.resolve()),
        (err: unknown) => {
          // Items queued behind a failed send were issued later: sending them now could
          // store them ahead of the failed ones once the caller retries. Fail them too.
          const behind = this.queue.splice(0);
          this.queuedBytes = 0;
          [...batch, ...behind].forEach((p) => p.reject(err));
        },
      )
      .finally(() => {
        this.sending = undefined;
        // Items that queued up during the send already waited at least one linger.
        if (this.queue.length > 0) this.startSend();
      });
  }
}
