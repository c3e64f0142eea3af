#!/usr/bin/env node
// Entry point behind the npm scripts. It needs nothing but Node: it installs the
// workspace's dependencies when they are missing or stale, then runs the real command,
// so `npm test` and `npm run demo` work on a fresh clone.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
// Node 20 is the supported runtime here; the AWS SDK's notice about Node 22 is noise in every log.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const tsxRun = ['--conditions=@regionsync/source', '--import', 'tsx'];

function sh(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (res.error) throw res.error;
  return res.status ?? 1;
}

function ensureDeps() {
  const lock = join(root, 'package-lock.json');
  const stamp = join(root, 'node_modules', '.regionsync-lock-hash');
  const hash = createHash('sha256').update(readFileSync(lock)).digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === hash && existsSync(join(root, 'node_modules', '.bin', 'tsx'))) return;
  console.error('[bootstrap] installing npm dependencies (npm install, versions from package-lock.json)');
  // Not `npm ci`: npm 11 writes lockfiles without foreign-platform optional packages and
  // then refuses them in `ci`. `install --no-save` still follows the lockfile's versions.
  if (sh('npm', ['install', '--no-audit', '--no-fund', '--no-save']) !== 0) {
    console.error('[bootstrap] npm install failed: check that the npm registry is reachable and Node 20+ is installed');
    process.exit(1);
  }
  writeFileSync(stamp, hash);
}

function runTs(file, args, env = {}) {
  return sh(process.execPath, [...tsxRun, file, ...args], { env: { ...process.env, ...env } });
}

function nx(args, env = {}) {
  return sh(join(root, 'node_modules', '.bin', 'nx'), args, { env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', ...env } });
}

function summarise(dir) {
  let passed = 0;
  let failed = 0;
  let files = 0;
  const failures = [];
  for (const f of existsSync(dir) ? readdirSync(dir) : []) {
    const r = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    passed += r.numPassedTests ?? 0;
    failed += (r.numFailedTests ?? 0) + (r.numRuntimeErrorTestSuites ?? 0);
    files += 1;
    for (const file of r.testResults ?? []) {
      const where = relative(root, file.name ?? f);
      const bad = (file.assertionResults ?? []).filter((a) => a.status === 'failed');
      for (const a of bad) failures.push(`${where} > ${a.fullName}: ${firstLine(a.failureMessages?.[0])}`);
      if (bad.length === 0 && file.status === 'failed') failures.push(`${where}: ${firstLine(file.message)}`);
    }
  }
  return { passed, failed, files, failures };
}

function firstLine(text) {
  return String(text ?? '').split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 300) ?? '';
}

function test() {
  const results = join(root, '.stack', 'test-results');
  rmSync(results, { recursive: true, force: true });
  mkdirSync(results, { recursive: true });
  rmSync(join(root, '.stack', 'test-summary.txt'), { force: true });
  const env = { REGIONSYNC_TEST_RESULTS: results };
  const steps = [];
  const step = (name, fn) => {
    const t = Date.now();
    console.error(`\n[test] ${name}`);
    const code = fn();
    steps.push({ name, code, seconds: Math.round((Date.now() - t) / 1000) });
  };
  step('lint, build and unit tests (nx run-many -t lint build test)', () => nx(['run-many', '-t', 'lint', 'build', 'test', '--skip-nx-cache', '--outputStyle=stream'], env));
  step('start the real multi-region stack (npm run stack -- up)', () => runTs('tools/stack/src/cli.ts', ['up']));
  step('integration and e2e tests on the real stack (nx run-many -t int)', () => nx(['run-many', '-t', 'int', '--parallel=1', '--skip-nx-cache', '--outputStyle=stream'], env));
  const { passed, failed, files, failures } = summarise(results);
  const stepFailures = steps.filter((s) => s.code !== 0).length;
  const lines = [
    ...steps.map((s) => `[test] ${s.code === 0 ? 'ok  ' : 'FAIL'} ${s.name} (${s.seconds} s)`),
    `[test] ${files} vitest result files`,
    ...failures.map((f) => `[test] failed: ${f}`),
    // A step that failed without a failing test (lint, build, stack) still counts as a failure.
    `${passed} passed, ${failed + (failed === 0 ? stepFailures : 0)} failed`,
  ];
  console.log(`\n${lines.join('\n')}`);
  // .ci/run prints this again as its very last output, where a truncated log still shows it.
  writeFileSync(join(root, '.stack', 'test-summary.txt'), `${lines.join('\n')}\n`);
  return stepFailures === 0 && failed === 0 && passed > 0 ? 0 : 1;
}

const [cmd, ...args] = process.argv.slice(2);
ensureDeps();
let code;
switch (cmd) {
  case 'stack':
    code = runTs('tools/stack/src/cli.ts', args);
    break;
  case 'test':
    code = test();
    break;
  case 'demo':
    code = runTs('tools/sandbox/src/demo.ts', args);
    break;
  case 'sandbox':
    code = runTs('tools/sandbox/src/sandbox-cli.ts', args);
    break;
  case 'bench':
    // Benchmarks run the compiled agent, as production does (see ClusterOptions.agentRuntime).
    // nx's output goes to stderr: the last stdout line is the benchmark's JSON.
    code = sh(join(root, 'node_modules', '.bin', 'nx'), ['run', '@regionsync/agent:build', '--outputStyle=static'], {
      env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' },
      stdio: ['ignore', 2, 2],
    });
    if (code === 0) code = runTs('bench/src/cli.ts', args);
    break;
  case 'regionsync':
    code = runTs('apps/coordinator/src/cli.ts', args);
    break;
  default:
    console.error('usage: node tools/bootstrap.mjs stack|test|demo|sandbox|bench|regionsync [args]');
    code = 2;
}
process.exit(code);
