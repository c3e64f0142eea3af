// `npm run demo`: the multi-region demo. Starts the stack, one agent per region on the
// demo schema and residency policy, a workload writing in every region, and a live view
// per region (rows, lag, applied/s, conflicts). Ctrl-C (or DEMO_DURATION_S) stops
// everything cleanly: workload first, then each agent drains.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { Cluster, type Broker } from './cluster.js';
import { demoPolicyPath } from './demo-policy.js';
import { LiveView } from './live-view.js';

const broker = (process.env.DEMO_BROKER ?? 'nats') as Broker;
const duration = Number(process.env.DEMO_DURATION_S ?? 0);
const interactive = process.stdout.isTTY && !process.env.CI;

const cluster = await Cluster.create({ database: 'demo', broker, policyFile: demoPolicyPath() });
console.error(`[demo] starting ${cluster.regions.length} agents on ${broker}…`);
await cluster.startAll();
const stop = new AbortController();
let stopping = false;
const shutdown = async () => {
  if (stopping) process.exit(1); // second Ctrl-C: leave now
  stopping = true;
  stop.abort();
  console.error('\n[demo] stopping: workload, then agents (draining)…');
};
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());

async function writer(region: string): Promise<void> {
  const db = new pg.Client({ connectionString: cluster.dbUrl(region) });
  await db.connect();
  const users: string[] = [];
  try {
    while (!stop.signal.aborted) {
      const roll = Math.random();
      if (roll < 0.3 || users.length === 0) {
        const id = randomUUID();
        users.push(id);
        await db.query('insert into users values ($1, $2, $3, $4, now())', [id, region, `user-${id.slice(0, 8)}@example.test`, `Demo User ${id.slice(0, 4)}`]);
      } else if (roll < 0.7) {
        await db.query('insert into orders values ($1, $2, $3, $4, $5, now())', [randomUUID(), users[Math.floor(Math.random() * users.length)], region, Math.floor(Math.random() * 10_000), 'placed']);
      } else {
        await db.query('insert into products values ($1, $2, 100, 1000, now()) on conflict (id) do update set stock = products.stock - 1, updated_at = now()', [1 + Math.floor(Math.random() * 20), 'product']);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await db.end();
  }
}

const writers = cluster.regions.map((r) => writer(r).catch((err: unknown) => console.error(`[demo] writer ${r}: ${(err as Error).message}`)));
const view = new LiveView(cluster, ['public.users', 'public.orders', 'public.products', 'public.documents']);
const started = Date.now();
while (!stop.signal.aborted) {
  const views = await view.sample().catch(() => []);
  const text = view.render(views, `regionsync demo — ${broker} — ${Math.round((Date.now() - started) / 1000)} s — Ctrl-C to stop (EU users stay in the EU)`);
  if (interactive) process.stdout.write(`\x1b[2J\x1b[H${text}\n`);
  else console.log(`${text}\n`);
  if (duration > 0 && Date.now() - started > duration * 1000) void shutdown();
  await new Promise((r) => setTimeout(r, 1000));
}
await Promise.all(writers);
await cluster.stop();
console.error('[demo] stopped cleanly');
