import { join } from 'node:path';
import type { StackLayout } from '../config.js';
import { binPath, type Log } from '../install.js';
import { assertPortFree, pidFile, runningPid, startDetached, stopManaged, waitFor } from '../process.js';

const NAME = 'toxiproxy';

export interface ProxySpec {
  name: string;
  listen: string;
  upstream: string;
}

/** One proxy per region per broker, so a test can cut exactly one region's link. */
export function proxySpecs(layout: StackLayout): ProxySpec[] {
  return layout.regions.flatMap((region, i) => [
    { name: `nats-${region}`, listen: `127.0.0.1:${layout.ports.natsProxy(i)}`, upstream: `127.0.0.1:${layout.ports.nats}` },
    { name: `kafka-${region}`, listen: `127.0.0.1:${layout.ports.kafkaProxy(i)}`, upstream: `127.0.0.1:${layout.ports.kafkaRegion(i)}` },
  ]);
}

export const toxiproxyUrl = (layout: StackLayout) => `http://127.0.0.1:${layout.ports.toxiproxy}`;

export async function startToxiproxy(layout: StackLayout, log: Log): Promise<void> {
  const run = join(layout.stateDir, 'run');
  if (runningPid(pidFile(run, NAME), 'toxiproxy') === undefined) {
    await assertPortFree(layout.ports.toxiproxy, 'Toxiproxy');
    log(`starting Toxiproxy on port ${layout.ports.toxiproxy}`);
    startDetached(run, join(layout.stateDir, 'logs'), { name: NAME, command: binPath(layout, 'toxiproxy'), args: ['-host', '127.0.0.1', '-port', String(layout.ports.toxiproxy)] });
  }
  await waitFor('Toxiproxy', async () => (await toxiproxyHealth(layout)) === undefined, 20_000);
  // Reconcile: create proxies that are missing (e.g. a region was added); never re-enable
  // a proxy a test deliberately disabled.
  const existing = (await (await fetch(`${toxiproxyUrl(layout)}/proxies`)).json()) as Record<string, unknown>;
  for (const p of proxySpecs(layout)) {
    if (p.name in existing) continue;
    const res = await fetch(`${toxiproxyUrl(layout)}/proxies`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...p, enabled: true }) });
    if (!res.ok) throw new Error(`Toxiproxy: creating proxy ${p.name} failed: ${res.status} ${await res.text()}`);
  }
}

export const stopToxiproxy = (layout: StackLayout) => stopManaged(join(layout.stateDir, 'run'), NAME, 'toxiproxy');

export async function toxiproxyHealth(layout: StackLayout): Promise<string | undefined> {
  try {
    const res = await fetch(`${toxiproxyUrl(layout)}/version`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? undefined : `version ${res.status}`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Cut (enabled=false) or restore one proxy; cutting drops its open connections too. */
export async function setProxyEnabled(layout: StackLayout, name: string, enabled: boolean): Promise<void> {
  const res = await fetch(`${toxiproxyUrl(layout)}/proxies/${encodeURIComponent(name)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ enabled }) });
  if (!res.ok) throw new Error(`Toxiproxy: ${enabled ? 'enabling' : 'disabling'} ${name} failed: ${res.status} ${await res.text()}`);
}

export interface Toxic {
  name: string;
  /** A Toxiproxy toxic type, e.g. `timeout`, `latency`, `reset_peer`. */
  type: string;
  /** `upstream`: client to server; `downstream`: server to client. */
  stream: 'upstream' | 'downstream';
  attributes: Record<string, number>;
}

/** Adds a toxic to one proxy; it applies to open connections as well as new ones. */
export async function addToxic(layout: StackLayout, proxy: string, toxic: Toxic): Promise<void> {
  const res = await fetch(`${toxiproxyUrl(layout)}/proxies/${encodeURIComponent(proxy)}/toxics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...toxic, toxicity: 1 }) });
  if (!res.ok) throw new Error(`Toxiproxy: adding toxic ${toxic.name} to ${proxy} failed: ${res.status} ${await res.text()}`);
}

/** Removes a toxic from one proxy; a toxic that is not there is not an error. */
export async function removeToxic(layout: StackLayout, proxy: string, name: string): Promise<void> {
  const res = await fetch(`${toxiproxyUrl(layout)}/proxies/${encodeURIComponent(proxy)}/toxics/${encodeURIComponent(name)}`, { method: 'DELETE' });
  if (!res.ok && res.status !== 404) throw new Error(`Toxiproxy: removing toxic ${name} from ${proxy} failed: ${res.status} ${await res.text()}`);
}

export async function resetProxies(layout: StackLayout): Promise<void> {
  const res = await fetch(`${toxiproxyUrl(layout)}/reset`, { method: 'POST' });
  if (!res.ok) throw new Error(`Toxiproxy: reset failed: ${res.status}`);
}
