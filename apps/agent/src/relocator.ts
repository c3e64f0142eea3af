// Removes local stray copies (policy `relocate`) once capture has forwarded them: the
// queue is drained only after the slot's confirmed position passed the WAL position taken
// when the batch was cut, i.e. after the bus confirmed every message up to the rows'
// commits. Until then (a cut link) the copy stays: a row is never removed before its home
// jurisdiction holds it.
import pg from 'pg';
import type { Logger } from 'pino';
import { purgeRelocated, type RelocateItem } from '@regionsync/gdpr';
import { parseLsn } from '@regionsync/protocol';
import { errInfo, guardClient, originName, databaseOf, sleep } from '@regionsync/replication';

export interface RelocatorDeps {
  region: string;
  databaseUrl: string;
  pool: pg.Pool;
  queue: RelocateItem[];
  confirmedLsn: () => string | undefined;
  log: Logger;
}

export async function runRelocator(d: RelocatorDeps, signal: AbortSignal): Promise<void> {
  const origin = originName('relocate', databaseOf(d.databaseUrl));
  while (!signal.aborted) {
    await sleep(500, signal).catch(() => undefined);
    if (d.queue.length === 0 || signal.aborted) continue;
    const batch = d.queue.splice(0, 500);
    try {
      const target = (await d.pool.query<{ l: string }>('select pg_current_wal_lsn()::text as l')).rows[0]!.l;
      while (!signal.aborted) {
        const c = d.confirmedLsn();
        if (c !== undefined && parseLsn(c) >= parseLsn(target)) break;
        await sleep(200, signal).catch(() => undefined);
      }
      if (signal.aborted) break;
      // A connection of its own: the purge sets a replication origin on its session.
      const db = guardClient(new pg.Client({ connectionString: d.databaseUrl, application_name: `regionsync-relocate-${d.region}` }));
      await db.connect();
      try {
        const removed = await purgeRelocated(db, d.region, origin, batch);
        d.log.info({ queued: batch.length, removed }, 'relocated rows removed here');
      } finally {
        await db.end().catch(() => undefined);
      }
    } catch (err) {
      d.queue.unshift(...batch);
      d.log.warn({ queued: batch.length, err: errInfo(err) }, 'removing relocated rows failed; retrying');
      await sleep(2000, signal).catch(() => undefined);
    }
  }
}
