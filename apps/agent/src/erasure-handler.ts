// Wiring of erasure requests: the control subject is read with this region's durable
// consumer (a region cut off when the request was made reads it when it returns), the
// erasure runs in the local database (libs/gdpr) and an erasure-ack goes back on the
// control subject. Logs carry the request id and counts, never the subject.
import pg from 'pg';
import type { Logger } from 'pino';
import type { Bus, Consumer } from '@regionsync/bus';
import { eraseSubject, type EraseResult } from '@regionsync/gdpr';
import { controlSubject, makeEnvelope, type Codec, type ErasureRequestBody } from '@regionsync/protocol';
import { databaseOf, errInfo, guardClient, originName, sleep } from '@regionsync/replication';
import type { AgentConfig } from './config.js';
import type { PolicyRuntime } from './policy-hooks.js';

export interface ErasureDeps {
  cfg: AgentConfig;
  bus: Bus;
  codec: Codec;
  policy: PolicyRuntime;
  log: Logger;
  signal: AbortSignal;
  isPoison: (err: unknown) => boolean;
}

const retryDelay = (attempt: number) => Math.min(10_000, 100 * 2 ** Math.min(attempt, 7));

export function startErasureConsumer(d: ErasureDeps): Consumer {
  const { cfg, bus, codec, log, signal } = d;
  return bus.consume({
    subject: controlSubject(cfg.bus.prefix),
    durable: `control-${cfg.region}`,
    maxInFlight: 16,
    maxDeliveries: 5,
    signal,
    decodeCheck: (data) => void codec.decode(data),
    onDeadLetter: (m, reason) => log.error({ seq: m.seq, id: m.id, reason }, 'control message dead-lettered'),
    handler: async (m) => {
      const env = codec.decode(m.data);
      // Other control actions (acks, cluster views) are for the coordinator.
      if (env.kind !== 'control' || env.body.action !== 'erasure-request') return;
      const body = env.body;
      const result = await eraseWithRetry(d, body);
      log.info({ requestId: body.requestId, rowsErased: result.rowsErased, perTable: result.perTable, redelivered: result.already }, 'erasure carried out');
      const ack = makeEnvelope('control', cfg.region, { action: 'erasure-ack', requestId: body.requestId, region: cfg.region, rowsErased: result.rowsErased, completedAt: Date.now() }, `${body.requestId}.ack.${cfg.region}`);
      for (let attempt = 0; ; attempt++) {
        try {
          await bus.publish(controlSubject(cfg.bus.prefix), codec.encode(ack), { id: ack.id });
          return;
        } catch (err) {
          if (signal.aborted) throw err;
          if (attempt % 10 === 0) log.warn({ requestId: body.requestId, attempt, err: errInfo(err) }, 'erasure ack not published; retrying');
          await sleep(retryDelay(attempt), signal);
        }
      }
    },
  });
}

// The database being down is no reason to drop an erasure: retry until it works or the
// agent stops (the message is then redelivered to the next run).
async function eraseWithRetry(d: ErasureDeps, body: ErasureRequestBody): Promise<EraseResult> {
  const erasure = d.policy.erasure;
  if (!erasure) {
    d.log.warn({ requestId: body.requestId }, 'erasure request without a residency policy: no table has a subject column, nothing erased');
    return { rowsErased: 0, perTable: {}, already: false };
  }
  for (let attempt = 0; ; attempt++) {
    // A connection of its own: the erasure sets a replication origin on its session.
    const db = guardClient(new pg.Client({ connectionString: d.cfg.database.url, application_name: `regionsync-erasure-${d.cfg.region}` }));
    try {
      await db.connect();
      return await eraseSubject(db, { requestId: body.requestId, subject: body.subject, ...(body.tables ? { tables: body.tables } : {}) }, { region: d.cfg.region, origin: originName('erasure', databaseOf(d.cfg.database.url)), tables: erasure.tables, erased: erasure.erased });
    } catch (err) {
      if (d.signal.aborted || d.isPoison(err)) throw err;
      if (attempt % 10 === 0) d.log.warn({ requestId: body.requestId, attempt, err: errInfo(err) }, 'erasure failed; retrying');
      await sleep(retryDelay(attempt), d.signal);
    } finally {
      await db.end().catch(() => undefined);
    }
  }
}
