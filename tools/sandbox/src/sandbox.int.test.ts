// The user-facing commands of issue 4.9, run as a user would: `npm run demo` (stopped by
// its duration knob instead of Ctrl-C) and `npm run sandbox -- up|status|down`.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { findRepoRoot } from '@regionsync/stack';

const root = findRepoRoot();
// Async (not spawnSync): a blocked test worker would miss vitest's own heartbeats.
function npm(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', ...args], { cwd: root, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('demo and sandbox commands', () => {
  it('npm run demo shows every region live and stops cleanly', async () => {
    const res = await npm(['demo'], { DEMO_DURATION_S: '6' });
    expect(res.status, res.stderr.slice(-2000)).toBe(0);
    for (const r of ['us-east-1', 'eu-west-1', 'eu-central-1']) expect(res.stdout).toMatch(new RegExp(`${r}\\s+(connected|autonomous)\\s+\\d+`));
    expect(res.stdout).toMatch(/applied\/s/);
    expect(res.stderr).toMatch(/stopped cleanly/);
  }, 300_000);

  it('npm run sandbox -- up prints one JSON document of endpoints; status and down work', async () => {
    const up = await npm(['sandbox', '--', 'up']);
    expect(up.status, up.stderr.slice(-2000)).toBe(0);
    const doc = JSON.parse(up.stdout) as { regions: Record<string, { databaseUrl: string; agentUrl: string; health: { mode: string } }> };
    expect(Object.keys(doc.regions).sort()).toEqual(['eu-central-1', 'eu-west-1', 'us-east-1']);
    for (const r of Object.values(doc.regions)) {
      expect(r.databaseUrl).toMatch(/^postgres:\/\//);
      expect(r.agentUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(r.health.mode).toBe('connected');
    }
    const status = await npm(['sandbox', '--', 'status']);
    expect(status.status).toBe(0);
    const down = await npm(['sandbox', '--', 'down']);
    expect(down.status).toBe(0);
    expect((await npm(['sandbox', '--', 'status'])).status).toBe(1);
  }, 300_000);
});
