#!/usr/bin/env node
// `regionsync` command line (npm run regionsync -- <command> …). Thin entry: the commands
// live in the libs; this file only dispatches and sets the exit code.
import { runAuditCli } from '@regionsync/gdpr';

const USAGE = `usage: regionsync <command> …
commands:
  audit export --db <postgres-url> [--format json|csv]     print a region's audit ledger
  audit verify --db <postgres-url> [--expected-head seq:hash]  check its hash chain
run "regionsync audit --help" for details`;

const io = { out: (t: string) => process.stdout.write(t), err: (t: string) => process.stderr.write(t) };

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'audit':
      return runAuditCli(rest, io);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.out(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      io.err(`regionsync: unknown command ${JSON.stringify(command.slice(0, 40))} (expected audit)\n\n${USAGE}\n`);
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
