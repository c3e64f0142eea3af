import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * Buckets of the commit-to-confirmed and commit-to-applied delays: fine below 25 ms, where
 * a healthy pipeline sits and where the p50/p99 of a live region are read, coarse up to
 * the minutes a region cut off and catching up takes.
 */
export const DELAY_BUCKETS = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** Replication metrics, registered on the registry the app passes in (never the global one). */
export function createReplicationMetrics(registry: Registry) {
  const registers = [registry];
  return {
    transactionsCaptured: new Counter({ name: 'regionsync_transactions_captured_total', help: 'Local transactions captured from the slot and published', registers }),
    rowsCaptured: new Counter({ name: 'regionsync_rows_captured_total', help: 'Rows captured from the slot', registers }),
    transactionsApplied: new Counter({ name: 'regionsync_transactions_applied_total', help: 'Remote transactions (chunks) applied locally', labelNames: ['source'] as const, registers }),
    transactionsSkipped: new Counter({ name: 'regionsync_transactions_skipped_total', help: 'Redelivered remote transactions recognised by origin progress and skipped', labelNames: ['source'] as const, registers }),
    rowsApplied: new Counter({ name: 'regionsync_rows_applied_total', help: 'Remote rows that changed local state', labelNames: ['source'] as const, registers }),
    conflicts: new Counter({ name: 'regionsync_conflicts_total', help: 'Concurrent writes detected (neither writer saw the other)', labelNames: ['table'] as const, registers }),
    captureDelaySeconds: new Histogram({ name: 'regionsync_capture_delay_seconds', help: "Local commit to every message of the transaction confirmed by the bus (the database's and the agent's clocks, one region)", buckets: DELAY_BUCKETS, registers }),
    applyDelaySeconds: new Histogram({ name: 'regionsync_apply_delay_seconds', help: 'Source commit to local apply commit of each remote transaction, per source region (includes the clock difference between the regions)', labelNames: ['source'] as const, buckets: DELAY_BUCKETS, registers }),
    lagSeconds: new Gauge({ name: 'regionsync_lag_seconds', help: 'Commit-to-apply lag of the last applied transaction, per source region', labelNames: ['source'] as const, registers }),
    busErrors: new Counter({ name: 'regionsync_bus_errors_total', help: 'Failed bus operations (publish or consume), retried', registers }),
    slotsLost: new Counter({ name: 'regionsync_capture_slots_lost_total', help: "Times this agent found its slot invalidated or dropped, re-created it and sent every region a full copy (RS_REPLICATION_SLOT_LOST)", registers }),
    captureErrors: new Counter({ name: 'regionsync_capture_errors_total', help: 'Replication stream failures (reconnected)', registers }),
    applyRetries: new Counter({ name: 'regionsync_apply_retries_total', help: 'Apply transactions retried after a serialization failure or deadlock with local writes', labelNames: ['source'] as const, registers }),
    applyNewKeyFallbacks: new Counter({ name: 'regionsync_apply_new_key_fallbacks_total', help: 'Apply transactions of inserts sent without loading local state, retried with the loads because a key already had a row or version here', labelNames: ['source'] as const, registers }),
    applyErrors: new Counter({ name: 'regionsync_apply_errors_total', help: 'Apply failures (retried in place, then dead-lettered)', labelNames: ['source'] as const, registers }),
    clockSkewRefusals: new Counter({ name: 'regionsync_clock_skew_refusals_total', help: 'Changes refused because the source clock is ahead by more than the allowed skew', labelNames: ['source'] as const, registers }),
    slotRetainedWalBytes: new Gauge({ name: 'regionsync_slot_retained_wal_bytes', help: "WAL retained by this agent's slot (current LSN minus restart LSN)", registers }),
  };
}

export type ReplicationMetrics = ReturnType<typeof createReplicationMetrics>;
