// JetStream durable pull consumer with in-order delivery to the handler.
//
// JetStream redelivers an unacknowledged message only after ack_wait, and meanwhile hands
// out newer ones: after a crash or a lost delivery that would reorder the stream. So the
// pull subscription is (re)started at the ack floor + 1, by re-creating the durable
// consumer when it has pending acknowledgements. That happens at start and after every
// reconnect.
//
// One process consumes a durable at a time: the durable pins its pull client (JetStream
// priority group, `pinned_client`). During a rolling update's overlap the new agent waits
// until the old one has stopped and released the pin (or the pin expired after a crash),
// then re-positions, so what the old one held unhandled comes back at once and in order.
// Two processes pulling at once split the stream between them, and the messages one held
// when it stopped came back to the other late, below what that one had processed.
//
// Everything delivered goes to the handler, late redeliveries included: the ack floor is
// the only position that holds across processes, so a duplicate is possible (handlers are
// idempotent), a skipped message is not.
import { AckPolicy, DeliverPolicy, JetStreamApiError, type ConsumerConfig, type ConsumerInfo, type ConsumerMessages, type JetStreamManager, type JsMsg, type PriorityPolicy } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { backoffDelay, sleep } from './backoff.js';
import { deliver, deliverBatch } from './delivery.js';
import type { NatsBus } from './nats-bus.js';
import { errorMessage, type ResolvedConsumeOptions } from './options.js';
import { natsStreamFor } from './topology.js';
import { HEADERS, type BusMessage, type Consumer, type ConsumerStats } from './types.js';

const ACK_WAIT_MS = 60_000;
const PIN_HEADER = 'Nats-Pin-Id';
// working() well inside ack_wait so a slow handler never triggers a redelivery.
const KEEPALIVE_MS = 15_000;
const CONSUMER_NOT_FOUND = 10014;
const PIN_GROUP = 'active';
const PINNED: PriorityPolicy = 'pinned_client';
// A pinned client that stops pulling (crash, partition) loses the pin after this long; a
// live one has a pull request waiting at all times, renewed every `expires` (5 s).
const PIN_TTL_MS = 10_000;
const PIN_POLL_MS = 250;

export function startNatsConsumer(bus: NatsBus, opts: ResolvedConsumeOptions): Consumer {
  const stats: ConsumerStats = { delivered: 0, acked: 0, deadLettered: 0, inFlight: 0, standby: false };
  let iter: ConsumerMessages | undefined;
  let handledInIter = 0;
  const { log, backoff, prefix } = bus.opts;
  const signal = opts.signal;

  // One keep-alive timer for the consumer, not one per message: the messages being handled
  // are told working() so a slow handler never triggers a redelivery.
  let current: JsMsg[] = [];
  const keepAlive = setInterval(() => current.forEach((m) => m.working()), KEEPALIVE_MS);
  // The pin id the server gave this process's pulls (from the messages' Nats-Pin-Id).
  let ownPin: string | undefined;
  const run = async () => {
    const stream = natsStreamFor(prefix, opts.subject);
    for (let failures = 0; !signal.aborted; ) {
      const stopIter = () => iter?.stop();
      const unsubscribe = bus.onReconnect(stopIter);
      signal.addEventListener('abort', stopIter, { once: true });
      let progressed = false;
      try {
        if (!(await bus.ready(signal))) break;
        const consumer = await awaitTurn(bus, stream, opts, ownPin, stats);
        if (!consumer) break;
        const js = bus.client();
        const c = await js.consumers.get(stream, consumer.name);
        iter = await c.consume({ max_messages: opts.maxInFlight, expires: 5_000, group: PIN_GROUP });
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
          ownPin = first.value.headers?.get(PIN_HEADER) || ownPin;
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
          const msgs: BusMessage[] = batch.map((m) => ({
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
          current = batch;
          const handled = batch.length === 1 ? ((await deliver(msgs[0]!, ctx)) === 'done' ? 1 : 0) : await deliverBatch(msgs, ctx);
          current = [];
          for (const m of batch.slice(0, handled)) {
            m.ack();
            stats.acked += 1;
            handledInIter += 1;
          }
          if (handled < batch.length) break;
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
    // Push the final acknowledgements out, then hand the durable over to a waiting process.
    await bus.flush();
    if (ownPin) await releasePin(bus.manager(), stream, opts, ownPin).catch((err: unknown) => log.warn({ subject: opts.subject, durable: opts.durable, err: errorMessage(err) }, 'bus consumer could not release its pin; another process takes over when it expires'));
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
    priority_policy: PINNED,
    priority_groups: [PIN_GROUP],
    priority_timeout: nanos(PIN_TTL_MS),
    ...(startSeq <= 1 ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq }),
  };
}

type PinnedInfo = ConsumerInfo & { priority_groups?: { group: string; pinned_client_id?: string }[] };

function pinOf(info: ConsumerInfo): string | undefined {
  return (info as PinnedInfo).priority_groups?.find((g) => g.group === PIN_GROUP)?.pinned_client_id || undefined;
}

/**
 * Waits while another process holds the durable's pin, then positions the durable.
 * Undefined when the signal aborted meanwhile.
 */
async function awaitTurn(bus: NatsBus, stream: string, opts: ResolvedConsumeOptions, ownPin: string | undefined, stats: ConsumerStats): Promise<ConsumerInfo | undefined> {
  for (let logged = false; !opts.signal.aborted; ) {
    const r = await positionConsumer(bus.manager(), stream, opts, ownPin);
    stats.standby = r === 'wait';
    if (r !== 'wait') return r;
    if (!logged) bus.opts.log.info({ subject: opts.subject, durable: opts.durable }, 'bus consumer waiting: another pull client holds or requests this durable');
    logged = true;
    await sleep(PIN_POLL_MS, opts.signal);
  }
  return undefined;
}

async function releasePin(jsm: JetStreamManager, stream: string, opts: ResolvedConsumeOptions, ownPin: string): Promise<void> {
  const info = await jsm.consumers.info(stream, opts.durable);
  if (pinOf(info) === ownPin) await jsm.consumers.unpin(stream, opts.durable, PIN_GROUP);
}

/** Make the durable consumer's next delivery be its ack floor + 1, unless another process holds it. */
async function positionConsumer(jsm: JetStreamManager, stream: string, opts: ResolvedConsumeOptions, ownPin: string | undefined): Promise<ConsumerInfo | 'wait'> {
  let info: ConsumerInfo | undefined;
  try {
    info = await jsm.consumers.info(stream, opts.durable);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === CONSUMER_NOT_FOUND)) throw err;
  }
  if (!info) return jsm.consumers.add(stream, consumerConfig(opts, 1));
  // Per-message acks are part of the shape: under cumulative ones (AckPolicy.All), one of two
  // agents sharing the durable during a rolling update's overlap acknowledged messages
  // delivered to the other and not yet handled, which were then never redelivered.
  const sameShape =
    info.config.filter_subject === opts.subject &&
    info.config.max_ack_pending === opts.maxInFlight &&
    info.config.ack_policy === AckPolicy.Explicit &&
    info.config.priority_policy === PINNED &&
    info.config.priority_timeout === nanos(PIN_TTL_MS);
  if (sameShape) {
    const pin = pinOf(info);
    // Our own pin from before a reconnect: the new subscription's pulls do not carry it, so
    // release it (and look again).
    if (pin !== undefined && pin === ownPin) {
      await jsm.consumers.unpin(stream, opts.durable, PIN_GROUP);
      return 'wait';
    }
    // Another process holds the pin, or pulls and gets it with its first message. This
    // process pulls nothing now, so a waiting pull request is someone else's, or a stale one
    // of ours that expires within `expires`.
    if (pin !== undefined || info.num_waiting > 0) return 'wait';
  }
  const clean = info.num_ack_pending === 0 && info.num_redelivered === 0;
  if (clean && sameShape) return info;
  // Pending acknowledgements would be redelivered late and out of order: start over at the
  // ack floor + 1.
  await jsm.consumers.delete(stream, opts.durable);
  return jsm.consumers.add(stream, consumerConfig(opts, info.ack_floor.stream_seq + 1));
}
