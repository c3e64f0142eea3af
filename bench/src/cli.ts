// Registry of benchmarks: `npm run bench -- <name>` → `node tools/bootstrap.mjs bench <name>`.
// Each entry is loaded lazily so one benchmark's dependencies never slow down another.
type Bench = { describe: string; run: (args: string[]) => Promise<void> };

const BENCHES: Record<string, Bench> = {
  replication: {
    describe: 'regionsync on NATS and Kafka vs PostgreSQL native logical replication: throughput, commit→visible p50/p99, agent RSS',
    run: async (args) => (await import('./replication.js')).main(args),
  },
  catchup: {
    describe: 'one region cut from the broker for 60 s while the others write 1,000 rows/s; catch-up time and rate after the restore (target 5x), agent peak RSS',
    run: async (args) => (await import('./catchup.js')).main(args),
  },
  bus: {
    describe: 'bus publish->consume throughput and p50/p99 latency (1 KiB) through @regionsync/bus vs the raw NATS/kafkajs clients',
    run: async (args) => (await import('./bus.js')).main(args),
  },
};

function usage(): string {
  return ['usage: npm run bench -- <name> [args]', '', ...Object.entries(BENCHES).map(([n, b]) => `  ${n.padEnd(12)} ${b.describe}`)].join('\n');
}

const [name, ...args] = process.argv.slice(2);
const bench = name ? BENCHES[name] : undefined;
if (!bench) {
  console.error(name ? `unknown benchmark '${name}'\n\n${usage()}` : usage());
  process.exit(2);
}
try {
  await bench.run(args);
  process.exit(0);
} catch (err) {
  console.error(`[bench] ${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
}
