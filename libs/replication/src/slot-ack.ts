import { formatLsn, parseLsn } from '@regionsync/protocol';

/**
 * The argument for pg-logical-replication's `acknowledge()` that makes the slot's
 * confirmed_flush_lsn exactly `endLsn` (a commit's end LSN: the first byte after its
 * commit record). The library reports "last byte flushed + 1", i.e. it adds one to what it
 * is given. Passing the end LSN itself put the slot one byte past it, and on the next
 * start PostgreSQL skips every transaction whose commit record starts before the confirmed
 * position: a concurrent transaction whose commit record directly followed the confirmed
 * one (same start LSN as that end) was skipped although the bus never had it.
 */
export function slotAckArgument(endLsn: string): string {
  const n = parseLsn(endLsn);
  return n === 0n ? '0/0' : formatLsn(n - 1n);
}
