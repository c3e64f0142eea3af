import pg from 'pg';
import type { Logger } from 'pino';
import { errInfo } from './err-info.js';
import { sleep } from './retry.js';

/**
 * While capture has seen no transaction for a while, emit a logical message this often: it
 * reaches capture as an empty transaction, whose acknowledgement moves the slot. Without it
 * a region that only applies (its stream carries nothing: the server leaves applied
 * transactions out with origin 'none') would hold WAL back without bound.
 */
export async function idleHeartbeats(o: { connectionString: string; everyMs: number; lastActivity: () => number; log: Logger }, signal: AbortSignal): Promise<void> {
  const pool = new pg.Pool({ connectionString: o.connectionString, max: 1 });
  pool.on('error', () => undefined);
  try {
    while (!signal.aborted) {
      await sleep(o.everyMs, signal);
      if (signal.aborted || Date.now() - o.lastActivity() < o.everyMs) continue;
      await pool.query(`select pg_logical_emit_message(true, 'regionsync', 'idle')`).catch((err: unknown) => o.log.warn({ err: errInfo(err) }, 'idle heartbeat failed'));
    }
  } finally {
    await pool.end();
  }
}
