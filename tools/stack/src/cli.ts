// npm run stack -- up|down|status|env
import { down, env, status, up } from './stack.js';

const usage = 'usage: npm run stack -- up|down|status|env   (regions: REGIONSYNC_REGIONS=us-east-1,eu-west-1,...)';

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (rest.length > 0) {
    console.error(`unexpected arguments: ${rest.join(' ')}\n${usage}`);
    return 2;
  }
  const log = (m: string) => console.error(`[stack] ${m}`);
  switch (cmd) {
    case 'up': {
      const started = Date.now();
      await up({ log });
      log(`stack is up (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      return printStatus();
    }
    case 'down': {
      const stopped = await down({ log });
      log(stopped.length ? `stopped ${stopped.length} processes` : 'nothing was running');
      return 0;
    }
    case 'status':
      return printStatus();
    case 'env':
      console.log(JSON.stringify(env(), null, 2));
      return 0;
    default:
      console.error(cmd ? `unknown command "${cmd}"\n${usage}` : usage);
      return 2;
  }
}

async function printStatus(): Promise<number> {
  const rows = await status();
  for (const r of rows) {
    const name = r.region ? `${r.service} ${r.region}` : r.service;
    console.log(`${r.healthy ? 'healthy  ' : 'UNHEALTHY'}  ${name.padEnd(28)}${r.detail ? `  ${r.detail}` : ''}`);
  }
  const bad = rows.filter((r) => !r.healthy).length;
  console.log(bad === 0 ? `all ${rows.length} services healthy` : `${bad} of ${rows.length} services unhealthy (start them with: npm run stack -- up)`);
  return bad === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[stack] ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
