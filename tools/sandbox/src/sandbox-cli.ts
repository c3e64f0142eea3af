// npm run sandbox -- up|down|status: the stack plus one agent per region on the demo
// schema and policy, left running for external scripts. Prints one JSON document.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findRepoRoot, resolveLayout, up } from '@regionsync/stack';
import { Cluster, type Broker } from './cluster.js';
import { demoPolicyPath } from './demo-policy.js';

const DATABASE = 'sandbox';
const dir = join(findRepoRoot(), '.stack', 'sandbox', DATABASE);
const broker = (process.env.SANDBOX_BROKER ?? 'nats') as Broker;

function pidOf(region: string): number | undefined {
  const f = join(dir, `${region}.pid`);
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, 'utf8'));
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

async function describe(regions: string[], cluster?: Cluster) {
  const env = cluster?.env ?? (await up());
  const out: Record<string, unknown> = {};
  for (const r of regions) {
    const cfgFile = join(dir, `${r}.yaml`);
    const port = existsSync(cfgFile) ? /port: (\d+)/.exec(readFileSync(cfgFile, 'utf8'))?.[1] : undefined;
    const agentUrl = port ? `http://127.0.0.1:${port}` : null;
    const health = agentUrl ? await fetch(`${agentUrl}/healthz`).then((x) => x.json(), () => null) : null;
    const u = new URL(env.regions[r]!.databaseUrl);
    u.pathname = `/${DATABASE}`;
    out[r] = { databaseUrl: u.toString(), agentUrl, pid: pidOf(r) ?? null, health };
  }
  return { broker, database: DATABASE, regions: out };
}

async function down(regions: string[]): Promise<number> {
  for (const r of regions) {
    const pid = pidOf(r);
    if (pid === undefined) continue;
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 60_000;
    while (pidOf(r) !== undefined && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
    // Drained or not, it goes: a second signal exits at once (the agent's own rule).
    if (pidOf(r) !== undefined) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // exited meanwhile
      }
    }
    rmSync(join(dir, `${r}.pid`), { force: true });
    console.error(`[sandbox] stopped agent ${r}`);
  }
  return 0;
}

async function main(cmd: string | undefined): Promise<number> {
  // Stopping the agents needs no stack: a region's server that will not come up (or will not
  // go down while its agent is connected) must not keep them running.
  if (cmd === 'down') return down(resolveLayout().regions);
  const env = await up({ log: (m) => console.error(`[sandbox] ${m}`) });
  const regions = env.regionNames;
  if (cmd === 'up') {
    const running = regions.filter((r) => pidOf(r) !== undefined);
    if (running.length === regions.length) {
      console.log(JSON.stringify(await describe(regions), null, 2));
      return 0;
    }
    const cluster = await Cluster.create({ database: DATABASE, broker, detached: true, fresh: running.length === 0, policyFile: demoPolicyPath() });
    for (const r of regions) if (pidOf(r) === undefined) await cluster.startAgent(r);
    const doc = JSON.stringify(await describe(regions, cluster), null, 2);
    writeFileSync(join(dir, 'sandbox.json'), doc);
    console.log(doc);
    return 0;
  }
  if (cmd === 'status') {
    const d = await describe(regions);
    console.log(JSON.stringify(d, null, 2));
    return regions.every((r) => pidOf(r) !== undefined) ? 0 : 1;
  }
  console.error('usage: npm run sandbox -- up|down|status   (SANDBOX_BROKER=nats|kafka)');
  return 2;
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[sandbox] ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
