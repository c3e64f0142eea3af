// Broker-independent handling of delivered messages (one at a time or in batches): decode check, handler retried in
// place with backoff, dead-lettering. Retrying in place (never skipping ahead) keeps
// per-key order, which the contract promises: a consumer that tracks progress as a
// high-watermark (the bus's own SIGKILL test child does) would lose a message handled
// after a later one. Apply does not rely on it: below its watermark it looks the message up.
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
  const checked = decodeOne(msg, ctx);
  if (!checked.ok) return toDeadLetter(msg, checked.reason, ctx);
  return handleOne(checked.msg, ctx);
}

type Decoded = { ok: true; msg: BusMessage } | { ok: false; reason: string };

// Runs decodeCheck once and hands its result through as `decoded`.
function decodeOne(msg: BusMessage, ctx: DeliveryContext): Decoded {
  const check = ctx.opts.decodeCheck;
  if (!check) return { ok: true, msg };
  try {
    const decoded = check(msg.data);
    return { ok: true, msg: decoded === undefined ? msg : { ...msg, decoded } };
  } catch (err) {
    return { ok: false, reason: `undecodable: ${errorMessage(err)}` };
  }
}

// One decoded message through `handler`: retried in place, dead-lettered after maxDeliveries.
async function handleOne(msg: BusMessage, ctx: DeliveryContext): Promise<DeliveryOutcome> {
  const { opts, stats } = ctx;
  const timer = ctx.keepAlive ? setInterval(ctx.keepAlive, ctx.keepAliveMs ?? 10_000) : undefined;
  try {
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

/**
 * Handles consecutive messages of one ordering unit, in order. With a `batchHandler`, runs
 * of decodable messages (at most `maxBatch`) go to it in one call; if it throws, that run
 * is handled one by one through `handler` (so a poison message is retried, then
 * dead-lettered, alone). An undecodable message is dead-lettered alone, in its place.
 * Returns how many messages, from the start, are done (handled or dead-lettered) and may
 * be acknowledged; fewer than all only when the consumer is stopping.
 */
export async function deliverBatch(msgs: BusMessage[], ctx: DeliveryContext): Promise<number> {
  const { opts, stats } = ctx;
  let done = 0;
  while (done < msgs.length) {
    if (!opts.batchHandler) {
      if ((await deliver(msgs[done]!, ctx)) === 'aborted') return done;
      done += 1;
      continue;
    }
    const run: BusMessage[] = [];
    let rejected: string | undefined;
    while (done + run.length < msgs.length && run.length < opts.maxBatch) {
      const checked = decodeOne(msgs[done + run.length]!, ctx);
      if (!checked.ok) {
        rejected = checked.reason;
        break;
      }
      run.push(checked.msg);
    }
    if (run.length === 0) {
      if ((await toDeadLetter(msgs[done]!, rejected ?? 'undecodable', ctx)) === 'aborted') return done;
      done += 1;
      continue;
    }
    const timer = ctx.keepAlive ? setInterval(ctx.keepAlive, ctx.keepAliveMs ?? 10_000) : undefined;
    let ok = false;
    try {
      stats.delivered += run.length;
      await opts.batchHandler(run);
      ok = true;
    } catch (err) {
      ctx.log.warn({ subject: run[0]!.subject, firstSeq: run[0]!.seq, lastSeq: run[run.length - 1]!.seq, messages: run.length, err: errorMessage(err) }, 'bus batch handler failed; handling its messages one by one');
    } finally {
      if (timer) clearInterval(timer);
    }
    if (ok) {
      done += run.length;
      continue;
    }
    if (opts.signal.aborted) return done;
    for (const m of run) {
      if ((await handleOne(m, ctx)) === 'aborted') return done;
      done += 1;
    }
  }
  return done;
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
