// JetStream durable pull consumer with strict in-order delivery to the handler.
//
// JetStream redelivers an unacknowledged message only after ack_wait, and meanwhile hands
// out newer ones: after a crash or a lost delivery that would reorder the stream. So the
// pull subscription is (re)started from a position we choose: max(ack floor, last
// processed) + 1, by re-creating the durable consumer when it is not already there. That
// happens at start and after every reconnect. Deliveries at or below the last processed
// sequence (late redeliveries) are acknowledged and skipped.
import { AckPolicy, DeliverPolicy, JetStreamApiError, type ConsumerConfig, type ConsumerInfo, type ConsumerMessages, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { backoffDelay, sleep } from './backoff.js';
import { deliver, deliverBatch } from './delivery.js';
import type { NatsBus } from './nats-bus.js';
import { errorMessage, type ResolvedConsumeOptions } from './options.js';
import { natsStreamFor } from './topology.js';
import { HEADERS, type BusMessage, type Consumer, type ConsumerStats } from './types.js';

const ACK_WAIT_MS = 60_000;
// working() well inside ack_wait so a slow handler never triggers a redelivery.
const KEEPALIVE_MS = 15_000;
const CONSUMER_NOT_FOUND = 10014;

export function startNatsConsumer(bus: NatsBus, opts: ResolvedConsumeOptions): Consumer {
  const stats: ConsumerStats = { delivered: 0, acked: 0, deadLettered: 0, inFlight: 0 };
  let iter: ConsumerMessages | undefined;
  let handledInIter = 0;
  const { log, backoff, prefix } = bus.opts;
  const signal = opts.signal;

  // One keep-alive timer for the consumer, not one per message: the messages being handled
  // are told working() so a slow handler never triggers a redelivery.
  let current: JsMsg[] = [];
  const keepAlive = setInterval(() => current.forEach((m) => m.working()), KEEPALIVE_MS);
  const run = async () => {
    const stream = natsStreamFor(prefix, opts.subject);
    let lastSeq = 0;
    for (let failures = 0; !signal.aborted; ) {
      const stopIter = () => iter?.stop();
      const unsubscribe = bus.onReconnect(stopIter);
      signal.addEventListener('abort', stopIter, { once: true });
      let progressed = false;
      try {
        if (!(await bus.ready(signal))) break;
        const consumer = await positionConsumer(bus.manager(), stream, opts, lastSeq);
        const js = bus.client();
        const c = await js.consumers.get(stream, consumer.name);
        iter = await c.consume({ max_messages: opts.maxInFlight, expires: 5_000 });
        handledInIter = 0;
        if (signal.aborted) break;
        // Messages are taken one at a time, plus (batch mode) whatever the subscription has
        // already buffered behind the first one, up to maxBatch; all are acknowledged after
        // they were handled, in order.
        const it = iter[Symbol.asyncIterator]();
        let ahead: Promise<IteratorResult<JsMsg>> | undefined;
        const limit = opts.batchHandler ? opts.maxBatch : 1;
        for (let ended = false; !ended && !signal.aborted; ) {
          const first = await (ahead ?? it.next());
          ahead = undefined;
          if (first.done) break;
          const batch: JsMsg[] = [first.value];
          let batchBytes = first.value.data.length;
          while (batch.length < limit && batchBytes < opts.maxBatchBytes && iter.getPending() > 0) {
            const p = it.next();
            // Only what is already buffered: never wait for the broker to fill a batch.
            const r = await Promise.race([p, new Promise<'later'>((resolve) => setImmediate(() => resolve('later')))]);
            if (r === 'later') {
              p.catch(() => undefined); // awaited in the next round; never an unhandled rejection
              ahead = p;
              break;
            }
            if (r.done) {
              ended = true;
              break;
            }
            batch.push(r.value);
            batchBytes += r.value.data.length;
          }
          progressed = true;
          const todo: JsMsg[] = [];
          for (const m of batch) {
            if (m.seq <= lastSeq) {
              m.ack();
              handledInIter += 1;
            } else if (todo.length === 0 || m.seq > todo[todo.length - 1]!.seq) todo.push(m);
            // else: not above the previous one (a late redelivery): skipped, as it would be once
            // the batch is processed (at or below the last processed sequence).
            else handledInIter += 1;
          }
          if (todo.length === 0) continue;
          const msgs: BusMessage[] = todo.map((m) => ({
            subject: m.subject,
            data: m.data,
            id: m.headers?.get(HEADERS.id) || undefined,
            key: m.headers?.get(HEADERS.key) || undefined,
            deliveryCount: m.info.deliveryCount,
            seq: String(m.seq),
          }));
          const ctx = {
            opts,
            backoff,
            log,
            stats,
            deadLetter: (dm: BusMessage, reason: string) => bus.deadLetter(dm, reason),
          };
          current = todo;
          const handled = todo.length === 1 ? ((await deliver(msgs[0]!, ctx)) === 'done' ? 1 : 0) : await deliverBatch(msgs, ctx);
          current = [];
          for (const m of todo.slice(0, handled)) {
            m.ack();
            stats.acked += 1;
            handledInIter += 1;
            lastSeq = m.seq;
          }
          if (handled < todo.length) break;
          failures = 0;
        }
      } catch (err) {
        if (signal.aborted) break;
        log.warn({ subject: opts.subject, durable: opts.durable, err: errorMessage(err) }, 'bus consumer failed; re-creating it');
      } finally {
        unsubscribe();
        signal.removeEventListener('abort', stopIter);
        iter?.stop();
        iter = undefined;
      }
      // A subscription that ended without progress (error, or reconnect before any
      // message) backs off so a broken broker is not hammered.
      if (!progressed && !signal.aborted) await sleep(backoffDelay(backoff, failures++), signal);
    }
    // Push the final acknowledgements out before reporting done.
    await bus.flush();
  };
  const finished = () => clearInterval(keepAlive);

  const done = run()
    .catch((err: unknown) => {
      log.warn({ subject: opts.subject, durable: opts.durable, err: errorMessage(err) }, 'bus consumer stopped on an unexpected error');
    })
    .finally(finished);
  return {
    done,
    stats: () => ({ ...stats, inFlight: iter ? Math.max(0, iter.getReceived() - handledInIter) : 0 }),
  };
}

function consumerConfig(opts: ResolvedConsumeOptions, startSeq: number): Partial<ConsumerConfig> {
  return {
    durable_name: opts.durable,
    ack_policy: AckPolicy.Explicit,
    filter_subject: opts.subject,
    max_ack_pending: opts.maxInFlight,
    ack_wait: nanos(ACK_WAIT_MS),
    // We dead-letter ourselves after maxDeliveries; the server must never give up silently.
    max_deliver: -1,
    ...(startSeq <= 1 ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq }),
  };
}

/** Make the durable consumer's next delivery be max(ack floor, lastSeq) + 1. */
async function positionConsumer(jsm: JetStreamManager, stream: string, opts: ResolvedConsumeOptions, lastSeq: number): Promise<ConsumerInfo> {
  let info: ConsumerInfo | undefined;
  try {
    info = await jsm.consumers.info(stream, opts.durable);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === CONSUMER_NOT_FOUND)) throw err;
  }
  if (!info) return jsm.consumers.add(stream, consumerConfig(opts, lastSeq + 1));
  const start = Math.max(lastSeq, info.ack_floor.stream_seq) + 1;
  const clean = info.num_ack_pending === 0 && info.num_redelivered === 0 && info.delivered.stream_seq + 1 >= start;
  // Per-message acks are part of the shape: under cumulative ones (AckPolicy.All), one of two
  // agents sharing the durable during a rolling update's overlap acknowledged messages
  // delivered to the other and not yet handled, which were then never redelivered.
  const sameShape = info.config.filter_subject === opts.subject && info.config.max_ack_pending === opts.maxInFlight && info.config.ack_policy === AckPolicy.Explicit;
  if (clean && sameShape) return info;
  // Pending acknowledgements would be redelivered late and out of order: start over at `start`.
  await jsm.consumers.delete(stream, opts.durable);
  return jsm.consumers.add(stream, consumerConfig(opts, start));
}
