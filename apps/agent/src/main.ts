#!/usr/bin/env node
// regionsync agent entry point: resolve config, start, stop cleanly on SIGTERM/SIGINT.
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { errorCode } from '@regionsync/protocol';
import { resolveConfig } from './config.js';
import { Agent } from './agent.js';
import { loadPolicy } from './policy-hooks.js';

async function main(): Promise<void> {
  const configPath = process.argv[2] ?? process.env.REGIONSYNC_CONFIG;
  let configYaml: string | undefined;
  if (configPath) {
    try {
      configYaml = readFileSync(configPath, 'utf8');
    } catch (err) {
      console.error(`regionsync-agent: cannot read config file ${configPath}: ${(err as Error).message}`);
      process.exit(2);
    }
  }
  const cfg = resolveConfig(process.env, { configYaml, configPath });
  const log = pino({ level: cfg.logLevel, base: { region: cfg.region, pid: process.pid } });
  loadPolicy(cfg); // fail before connecting anything when the policy file is wrong
  const agent = new Agent(cfg, log);
  let signals = 0;
  const onSignal = (sig: string) => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal: sig }, 'second signal: exiting without draining');
      process.exit(1);
    }
    log.info({ signal: sig }, 'signal received; draining');
    agent.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  await agent.start();
}

main().catch((err: unknown) => {
  const code = errorCode(err);
  console.error(`regionsync-agent: ${code ? `${code}: ` : ''}${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
