// Test-only consumer process for the crash test: applies every message in one PostgreSQL
// transaction together with a per-key high-watermark check, exactly like replication
// apply does, so a redelivered message is skipped and an out-of-order one is recorded.
//   node --conditions=@regionsync/source --import tsx src/testing/consumer-child.ts
// configured through BUS_KIND, BUS_SERVERS, BUS_PREFIX, BUS_SUBJECT, BUS_DURABLE,
// DATABASE_URL and TABLE (table name prefix created by the test).
import pg from 'pg';
import { createBus } from '../create-bus.js';
import type { BusKind } from '../types.js';
import { readN } from './fixtures.js';

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`consumer-child: ${name} is not set`);
  return v;
}

async function main(): Promise<void> {
  const table = env('TABLE');
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error('consumer-child: TABLE must be a plain identifier');
  const db = new pg.Client({ connectionString: env('DATABASE_URL') });
  await db.connect();
  const bus = createBus({ kind: env('BUS_KIND') as BusKind, servers: env('BUS_SERVERS').split(','), prefix: env('BUS_PREFIX'), clientId: `child-${process.pid}`, reconnect: { initialMs: 50, maxMs: 1_000 } });
  await bus.connect();
  const stop = new AbortController();
  const consumer = bus.consume({
    subject: env('BUS_SUBJECT'),
    durable: env('BUS_DURABLE'),
    maxInFlight: 64,
    signal: stop.signal,
    handler: async (msg) => {
      const n = readN(msg.data);
      const key = msg.key ?? '';
      await db.query('BEGIN');
      try {
        const { rows } = await db.query<{ hwm: number }>(`SELECT hwm FROM ${table}_progress WHERE key = $1 FOR UPDATE`, [key]);
        const hwm = rows[0]?.hwm ?? 0;
        if (n <= hwm) {
          await db.query('COMMIT');
          return; // already applied: a redelivery
        }
        if (n !== hwm + 1) await db.query(`INSERT INTO ${table}_violations (key, expected, got) VALUES ($1, $2, $3)`, [key, hwm + 1, n]);
        await db.query(`INSERT INTO ${table}_applied (id, n) VALUES ($1, $2)`, [msg.id ?? '', n]);
        await db.query(`INSERT INTO ${table}_progress (key, hwm) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET hwm = excluded.hwm`, [key, n]);
        await db.query('COMMIT');
      } catch (err) {
        await db.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    },
  });
  const shutdown = () => stop.abort();
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  process.stdout.write('ready\n');
  await consumer.done;
  await bus.close();
  await db.end();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
