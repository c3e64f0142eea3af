import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StackLayout } from '../config.js';
import { binPath, type Log } from '../install.js';
import { assertPortFree, ensureDir, pidFile, runningPid, startDetached, stopManaged, waitFor } from '../process.js';

const NAME = 'nats';

export async function startNats(layout: StackLayout, log: Log): Promise<void> {
  const run = join(layout.stateDir, 'run');
  const bin = binPath(layout, 'natsServer');
  if (runningPid(pidFile(run, NAME), 'nats-server') === undefined) {
    await assertPortFree(layout.ports.nats, 'NATS');
    log(`starting NATS with JetStream on port ${layout.ports.nats}`);
    const dir = ensureDir(join(layout.stateDir, 'nats'));
    const conf = join(dir, 'nats.conf');
    writeFileSync(conf, `listen: 127.0.0.1:${layout.ports.nats}
http: 127.0.0.1:${layout.ports.natsMonitor}
server_name: regionsync-nats
max_payload: 8MB
ping_interval: "5s"
ping_max: 2
jetstream {
  store_dir: "${join(dir, 'js')}"
  max_memory_store: 256MB
  # A cap on what streams may reserve (JetStream reserves every stream's max_bytes up front),
  # not disk actually used: many test clusters each reserve a few GB.
  max_file_store: 512GB
}
`);
    startDetached(run, join(layout.stateDir, 'logs'), { name: NAME, command: bin, args: ['-c', conf] });
  }
  await waitFor('NATS', async () => (await natsHealth(layout)) === undefined, 30_000, join(layout.stateDir, 'logs', 'nats.log'));
}

export const stopNats = (layout: StackLayout) => stopManaged(join(layout.stateDir, 'run'), NAME, 'nats-server');

export async function natsHealth(layout: StackLayout): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${layout.ports.natsMonitor}/healthz?js-enabled-only=true`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? undefined : `healthz ${res.status}`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
