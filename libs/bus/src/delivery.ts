// Broker-independent handling of one delivered message: decode check, handler retried in
// place with backoff, dead-lettering. Retrying in place (never skipping ahead) keeps
// per-key order: apply tracks progress as a high-watermark per source, so a message
// processed after a later one would be lost.
import { backoffDelay, sleep, type BackoffPolicy } from './backoff.js';
import { errorMessage, type ResolvedConsumeOptions } from './options.js';
import type { BusLogger, BusMessage, ConsumerStats } from './types.js';

export interface DeliveryContext {
  opts: ResolvedConsumeOptions;
  backoff: BackoffPolicy;
  log: BusLogger;
  stats: ConsumerStats;
  /** Durably store the message on its dead-letter subject; throws if that failed. */
  deadLetter(msg: BusMessage, reason: string): Promise<void>;
  /** Called periodically while a message is being handled (e.g. JetStream `working()`). */
  keepAlive?: () => void;
  keepAliveMs?: number;
}

/** `done`: handled or dead-lettered, acknowledge it. `aborted`: stop, leave it unacknowledged. */
export type DeliveryOutcome = 'done' | 'aborted';

export async function deliver(msg: BusMessage, ctx: DeliveryContext): Promise<DeliveryOutcome> {
  const { opts, stats } = ctx;
  const timer = ctx.keepAlive ? setInterval(ctx.keepAlive, ctx.keepAliveMs ?? 10_000) : undefined;
  try {
    if (opts.decodeCheck) {
      try {
        opts.decodeCheck(msg.data);
      } catch (err) {
        return await toDeadLetter(msg, `undecodable: ${errorMessage(err)}`, ctx);
      }
    }
    const firstCount = msg.deliveryCount;
    for (let attempt = 1; ; attempt++) {
      const current = { ...msg, deliveryCount: firstCount + attempt - 1 };
      stats.delivered += 1;
      try {
        await opts.handler(current);
        return 'done';
      } catch (err) {
        const reason = errorMessage(err);
        if (current.deliveryCount >= opts.maxDeliveries) {
          return await toDeadLetter(current, `handler failed ${current.deliveryCount} times: ${reason}`, ctx);
        }
        ctx.log.warn({ subject: msg.subject, seq: msg.seq, id: msg.id, attempt: current.deliveryCount, err: reason }, 'bus handler failed; retrying the same message');
        if (opts.signal.aborted) return 'aborted';
        await sleep(backoffDelay(ctx.backoff, attempt - 1), opts.signal);
        if (opts.signal.aborted) return 'aborted';
      }
    }
  } finally {
    if (timer) clearInterval(timer);
  }
}

async function toDeadLetter(msg: BusMessage, reason: string, ctx: DeliveryContext): Promise<DeliveryOutcome> {
  // The dead-letter copy must be stored before the original is acknowledged, or a
  // poison message could vanish; retry until it is, or until the consumer stops.
  for (let attempt = 0; ; attempt++) {
    try {
      await ctx.deadLetter(msg, reason);
      break;
    } catch (err) {
      ctx.log.warn({ subject: msg.subject, seq: msg.seq, err: errorMessage(err) }, 'bus dead-letter publish failed; retrying');
      if (ctx.opts.signal.aborted) return 'aborted';
      await sleep(backoffDelay(ctx.backoff, attempt), ctx.opts.signal);
      if (ctx.opts.signal.aborted) return 'aborted';
    }
  }
  ctx.stats.deadLettered += 1;
  ctx.log.warn({ subject: msg.subject, seq: msg.seq, id: msg.id, reason }, 'bus message dead-lettered');
  try {
    ctx.opts.onDeadLetter?.(msg, reason);
  } catch {
    // A faulty observer must not stall the stream.
  }
  return 'done';
}
