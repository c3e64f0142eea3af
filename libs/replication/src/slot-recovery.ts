// A slot whose WAL is gone (invalidated past max_slot_wal_keep_size, or dropped) cannot be
// resumed: the changes committed since its last acknowledgement will never be decoded.
// Recovery keeps the no-loss invariant without that WAL: the destinations are forgotten
// (so a crash half-way still ends in a copy), the slot is created anew, and only then is a
// snapshot of everything this region holds sent to every destination. The snapshot is read
// after the new slot exists, so together they cover every write; the overlap merges to the
// same state (versions decide, counter contributions are cumulative per region).
import type pg from 'pg';
import { forgetDestinations } from './snapshot.js';

export type SlotState = 'ok' | 'missing' | 'lost';

export async function slotState(db: pg.ClientBase, slot: string): Promise<SlotState> {
  const r = await db.query<{ wal_status: string | null }>('select wal_status from pg_replication_slots where slot_name = $1', [slot]);
  if (r.rowCount === 0) return 'missing';
  return r.rows[0]!.wal_status === 'lost' ? 'lost' : 'ok';
}

/** Forget every destination's membership, then drop the lost slot (if any) and create it again. */
export async function recreateSlot(db: pg.ClientBase, slot: string, destinations: string[]): Promise<void> {
  await forgetDestinations(db, destinations);
  // An invalidated slot may still be marked active for a moment while its walsender exits.
  await db.query(`select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1 and active_pid is not null`, [slot]);
  for (let i = 0; i < 50; i++) {
    const r = await db.query('select 1 from pg_replication_slots where slot_name = $1 and active', [slot]);
    if (r.rowCount === 0) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  await db.query('select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1', [slot]);
  await db.query(`select pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
}
