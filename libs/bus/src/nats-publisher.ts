// JetStream publishes with one reply subscription for all of them. The client's
// request() per publish (what JetStreamClient.publish does) builds a request object, a
// deferred, a timer and, on every successful reply, an Error with a captured stack (its
// cancel() rejects the settled deferred with a fresh RequestError): about a tenth of the
// capturing agent's CPU at 1,000 commits/s. Here a publish is a plain publish with a reply
// subject under our own inbox; replies are matched by token, and one sweep timer fails the
// publishes whose acknowledgement did not come in time.
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';

interface PendingAck {
  resolve: (ack: { duplicate: boolean; seq: number }) => void;
  reject: (err: Error) => void;
  deadline: number;
}

/** Named like the client's own timeout error, so callers classify both alike. */
export class PublishAckTimeout extends Error {
  override readonly name = 'TimeoutError';
}

export class JetStreamPublisher {
  private readonly inbox = createInbox();
  private readonly sub: Subscription;
  private readonly pending = new Map<string, PendingAck>();
  private readonly sweeper: ReturnType<typeof setInterval>;
  private next = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    this.sub = nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => (err ? this.failAll(err) : this.onReply(msg)) });
    this.sweeper = setInterval(() => this.sweep(), Math.max(10, Math.min(250, Math.floor(timeoutMs / 4))));
    this.sweeper.unref();
  }

  /** Publishes to the stream bound to `subject`; resolves with its PubAck. */
  publish(subject: string, data: Uint8Array, headers: MsgHdrs, msgId: string): Promise<{ duplicate: boolean; seq: number }> {
    headers.set('Nats-Msg-Id', msgId);
    const token = (this.next++).toString(36);
    return new Promise((resolve, reject) => {
      this.pending.set(token, { resolve, reject, deadline: Date.now() + this.timeoutMs });
      try {
        this.nc.publish(subject, data, { reply: `${this.inbox}.${token}`, headers });
      } catch (err) {
        this.pending.delete(token);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  private onReply(msg: Msg): void {
    const token = msg.subject.slice(this.inbox.length + 1);
    const p = this.pending.get(token);
    if (!p) return; // already timed out
    this.pending.delete(token);
    const status = msg.headers?.code ?? 0;
    if (status === 503) return p.reject(new Error('no responders: no JetStream stream listens on the subject (JetStream not enabled, or the stream is missing)'));
    if (status >= 400) return p.reject(new Error(`JetStream replied ${status} ${msg.headers?.description ?? ''}`.trim()));
    let ack: { stream?: string; seq?: number; duplicate?: boolean; error?: { code?: number; err_code?: number; description?: string } };
    try {
      ack = JSON.parse(new TextDecoder().decode(msg.data)) as typeof ack;
    } catch {
      return p.reject(new Error('JetStream acknowledgement is not JSON'));
    }
    if (ack.error) return p.reject(new Error(`${ack.error.description ?? 'JetStream error'} (code ${ack.error.code ?? '?'}, err_code ${ack.error.err_code ?? '?'})`));
    if (!ack.stream || typeof ack.seq !== 'number') return p.reject(new Error('invalid JetStream acknowledgement'));
    p.resolve({ duplicate: ack.duplicate === true, seq: ack.seq });
  }

  // Every publish has the same timeout, so deadlines grow in insertion (Map) order.
  private sweep(): void {
    const now = Date.now();
    for (const [token, p] of this.pending) {
      if (p.deadline > now) break;
      this.pending.delete(token);
      p.reject(new PublishAckTimeout(`no acknowledgement within ${this.timeoutMs} ms`));
    }
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** Stops matching replies; publishes still waiting fail. */
  close(why: Error): void {
    clearInterval(this.sweeper);
    this.sub.unsubscribe();
    this.failAll(why);
  }
}
