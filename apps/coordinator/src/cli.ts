#!/usr/bin/env node
// `regionsync` command line (npm run regionsync -- <command> …). Thin entry: the commands
// live in the libs; this file only dispatches and sets the exit code.
import { runAuditCli } from '@regionsync/gdpr';
import { runErasureCli } from './erasure-cli.js';

const USAGE = `usage: regionsync <command> …
commands:
  audit export --db <postgres-url> [--format json|csv]     print a region's audit ledger
  audit verify --db <postgres-url> [--expected-head seq:hash]  check its hash chain
  erase --subject <id> --bus nats|kafka --servers … --regions …  erase a data subject in every region
  erase --status <request-id> …                                 which regions have carried it out
  export --subject <id> --policy <file> --db <region>=<url> …  the subject's data as one JSON document
run "regionsync audit --help" or "regionsync erase --help" for details`;

const io = { out: (t: string) => process.stdout.write(t), err: (t: string) => process.stderr.write(t) };

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'audit':
      return runAuditCli(rest, io);
    case 'erase':
    case 'export':
      return runErasureCli(command, rest, io);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.out(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      io.err(`regionsync: unknown command ${JSON.stringify(command.slice(0, 40))} (expected audit, erase or export)\n\n${USAGE}\n`);
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
