// Which transactions the walsender leaves out (pgoutput's `origin` option, PostgreSQL 16+).
//
// Apply writes every remote transaction under a regionsync replication origin; capture must
// not forward those (no echo). With `origin 'any'` the server decodes and sends them and
// capture drops them; with `origin 'none'` the server leaves out every change that carries
// *any* origin, which saves the walsender and the agent that work (about a tenth of the
// CPU of a region that applies).
//
// 'none' also leaves out changes written under a replication origin that is not ours (a
// user's own native subscription into this database, another replication tool), which
// capture forwards today. So 'none' is used only while no such origin exists, and that is
// checked again before every slot acknowledgement and every second: an origin must exist
// before anything commits under it, so a check that started after a transaction was received
// and found no foreign origin proves the transaction carried none (unless an origin was
// created, used and dropped between two checks). When one appears, capture does
// not acknowledge and restarts its stream with 'any' from the last acknowledged position,
// so the transactions the server left out are read again and forwarded.
import pg from 'pg';
import type { Logger } from 'pino';
import { RegionsyncError } from '@regionsync/protocol';
import { errInfo } from './err-info.js';
import { ORIGIN_PREFIX } from './sql-names.js';

export type OriginFilter = 'none' | 'any';

/** First server_version_num whose pgoutput takes the `origin` option. */
export const ORIGIN_OPTION_MIN_VERSION_NUM = 160000;

/** The decision, pure: 'none' on a server that has the option and no foreign origin. */
export function chooseOriginFilter(serverVersionNum: number, foreignOrigins: readonly string[], foreignSeenBefore: boolean): OriginFilter {
  return serverVersionNum >= ORIGIN_OPTION_MIN_VERSION_NUM && foreignOrigins.length === 0 && !foreignSeenBefore ? 'none' : 'any';
}

const FOREIGN_ORIGINS_SQL = `select roname from pg_replication_origin where left(roname, ${ORIGIN_PREFIX.length}) <> '${ORIGIN_PREFIX}' order by roname limit 10`;

/** Replication origins of this cluster that regionsync did not create (at most 10 names). */
export async function foreignOrigins(db: pg.ClientBase | pg.Pool): Promise<string[]> {
  const { rows } = await db.query<{ roname: string }>(FOREIGN_ORIGINS_SQL);
  return rows.map((r) => r.roname);
}

/** Reads the server version and the foreign origins, and decides. */
export async function readOriginFilter(db: pg.ClientBase, foreignSeenBefore: boolean): Promise<{ filter: OriginFilter; foreign: string[]; serverVersionNum: number }> {
  const { rows } = await db.query<{ v: string }>(`select current_setting('server_version_num') as v`);
  const serverVersionNum = Number(rows[0]?.v ?? 0);
  const foreign = serverVersionNum >= ORIGIN_OPTION_MIN_VERSION_NUM ? await foreignOrigins(db) : [];
  return { filter: chooseOriginFilter(serverVersionNum, foreign, foreignSeenBefore), foreign, serverVersionNum };
}

/**
 * Capture's side of it: chooses the filter at each stream start and checks before each slot
 * acknowledgement. Once a foreign origin was seen, this process stays on 'any' (the origin
 * may be dropped before the transactions left out under it are read again).
 */
export class OriginGuard {
  filter: OriginFilter = 'any';
  private foreignSeen = false;
  private pool: pg.Pool | undefined;

  constructor(private readonly connectionString: string, private readonly log: Logger) {}

  async choose(db: pg.ClientBase): Promise<OriginFilter> {
    const before = this.filter;
    let filter: OriginFilter = 'any';
    try {
      const read = await readOriginFilter(db, this.foreignSeen);
      filter = read.filter;
      if (read.foreign.length > 0) this.foreignSeen = true;
      if (filter !== before || read.foreign.length > 0) this.log.info({ originFilter: filter, serverVersionNum: read.serverVersionNum, foreignOrigins: read.foreign }, 'capture origin filter chosen');
    } catch (err) {
      this.log.warn({ err: errInfo(err) }, 'cannot read pg_replication_origin; the server sends applied transactions for capture to drop (origin any)');
    }
    this.filter = filter;
    return filter;
  }

  /**
   * With 'none': undefined if no foreign origin exists, else the error to restart the stream
   * with (also when the check itself failed: nothing may be acknowledged unchecked).
   */
  async check(): Promise<RegionsyncError | undefined> {
    if (this.filter !== 'none') return undefined;
    if (!this.pool) {
      this.pool = new pg.Pool({ connectionString: this.connectionString, max: 1, application_name: 'regionsync-capture-origins' });
      this.pool.on('error', () => undefined);
    }
    let foreign: string[];
    try {
      foreign = await foreignOrigins(this.pool);
    } catch (err) {
      return new RegionsyncError('RS_REPLICATION_STREAM', 'cannot check for replication origins before a slot acknowledgement', { cause: err, retryable: true });
    }
    if (foreign.length === 0) return undefined;
    this.foreignSeen = true;
    this.log.warn({ foreignOrigins: foreign }, "a replication origin that is not regionsync's appeared: restarting capture with origin any so its transactions are forwarded");
    return new RegionsyncError('RS_REPLICATION_STREAM', 'a foreign replication origin appeared; restarting the stream with origin any', { retryable: true });
  }

  async end(): Promise<void> {
    await this.pool?.end().catch(() => undefined);
    this.pool = undefined;
  }
}
