// The bench table. Same machine = same clock: latency is the destination's arrived_at
// (set by a BEFORE trigger, destination only) minus sent_at (clock_timestamp() in the
// source's single-row commit).
export const BENCH_TABLE = 'public.bench_rows';

export const BENCH_SCHEMA_SQL = `
create table if not exists public.bench_rows (id bigint primary key, payload text, sent_at timestamptz, arrived_at timestamptz);
create or replace function public.bench_set_arrived() returns trigger language plpgsql as $$
begin
  NEW.arrived_at := clock_timestamp();
  return NEW;
end $$;
`;

/**
 * Destination only. Native subscriptions and regionsync's apply both run in replica mode
 * (session_replication_role), which skips ordinary triggers: ENABLE ALWAYS.
 */
export const ARRIVED_TRIGGER_SQL = `
drop trigger if exists bench_arrived on public.bench_rows;
create trigger bench_arrived before insert or update on public.bench_rows for each row execute function public.bench_set_arrived();
alter table public.bench_rows enable always trigger bench_arrived;`;

/** Ids of the latency phase start here, above every throughput id. */
export const LATENCY_ID_BASE = 1_000_000_000;
/** Ids of the unmeasured warm-up before the latency phase: between throughput and latency ids. */
export const WARMUP_ID_BASE = 900_000_000;
/** Warm-up probe rows (pipeline live before timing) use negative ids. */
export const PROBE_ID_BASE = -1_000;
