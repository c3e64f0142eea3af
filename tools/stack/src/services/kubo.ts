import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StackLayout } from '../config.js';
import { binPath, type Log } from '../install.js';
import { assertPortFree, ensureDir, pidFile, run, runningPid, startDetached, stopManaged, waitFor } from '../process.js';

export const kuboName = (region: string) => `kubo-${region}`;
export const kuboRepo = (layout: StackLayout, region: string) => join(layout.stateDir, 'kubo', region);
export const kuboApiUrl = (layout: StackLayout, i: number) => `http://127.0.0.1:${layout.ports.kuboApi(i)}`;
const swarmAddr = (layout: StackLayout, i: number) => `/ip4/127.0.0.1/tcp/${layout.ports.kuboSwarm(i)}`;

// Telemetry and auto-configuration would reach for the public internet; the nodes must
// only ever talk to each other.
const kuboEnv = (repo: string): NodeJS.ProcessEnv => ({ ...process.env, IPFS_PATH: repo, IPFS_TELEMETRY: 'off', GOMAXPROCS: '2' });

type Json = Record<string, unknown>;

function peerId(layout: StackLayout, region: string): string {
  const cfg = JSON.parse(readFileSync(join(kuboRepo(layout, region), 'config'), 'utf8')) as { Identity: { PeerID: string } };
  return cfg.Identity.PeerID;
}

function initRepo(layout: StackLayout, i: number, log: Log): void {
  const region = layout.regions[i]!;
  const repo = kuboRepo(layout, region);
  if (existsSync(join(repo, 'config'))) return;
  log(`initialising Kubo repository for ${region}`);
  ensureDir(repo);
  run(binPath(layout, 'kubo'), ['init', '--profile', 'test', '--empty-repo'], { what: `ipfs init for ${region}`, env: kuboEnv(repo) });
}

/** Private cluster: loopback only, no bootstrap, no DHT, no mDNS; regions peer directly. */
function writeConfig(layout: StackLayout, i: number): void {
  const region = layout.regions[i]!;
  const file = join(kuboRepo(layout, region), 'config');
  const cfg = JSON.parse(readFileSync(file, 'utf8')) as Json;
  const obj = (k: string): Json => (cfg[k] ??= {}) as Json;
  Object.assign(obj('Addresses'), {
    API: `/ip4/127.0.0.1/tcp/${layout.ports.kuboApi(i)}`,
    Gateway: `/ip4/127.0.0.1/tcp/${layout.ports.kuboGateway(i)}`,
    Swarm: [swarmAddr(layout, i)],
    Announce: [],
    NoAnnounce: [],
  });
  cfg.Bootstrap = [];
  Object.assign(obj('Discovery'), { MDNS: { Enabled: false } });
  Object.assign(obj('Routing'), { Type: 'none' });
  Object.assign(obj('AutoConf'), { Enabled: false });
  Object.assign(obj('Swarm'), { DisableNatPortMap: true, RelayClient: { Enabled: false }, RelayService: { Enabled: false }, Transports: { Network: { QUIC: false, WebTransport: false, WebRTCDirect: false, Websocket: false } } });
  Object.assign(obj('Peering'), {
    Peers: layout.regions.flatMap((r, j) => (j === i || !existsSync(join(kuboRepo(layout, r), 'config')) ? [] : [{ ID: peerId(layout, r), Addrs: [swarmAddr(layout, j)] }])),
  });
  writeFileSync(file, JSON.stringify(cfg, null, 2));
}

export async function startKubo(layout: StackLayout, log: Log): Promise<void> {
  const runDir = join(layout.stateDir, 'run');
  layout.regions.forEach((_, i) => initRepo(layout, i, log));
  for (const [i, region] of layout.regions.entries()) {
    if (runningPid(pidFile(runDir, kuboName(region)), 'ipfs') !== undefined) continue;
    await assertPortFree(layout.ports.kuboApi(i), `Kubo ${region}`);
    writeConfig(layout, i);
    log(`starting Kubo ${region} (API port ${layout.ports.kuboApi(i)})`);
    startDetached(runDir, join(layout.stateDir, 'logs'), {
      name: kuboName(region),
      command: binPath(layout, 'kubo'),
      args: ['daemon', '--migrate=false'],
      env: kuboEnv(kuboRepo(layout, region)),
    });
  }
  for (const [i, region] of layout.regions.entries()) {
    await waitFor(`Kubo ${region}`, async () => (await kuboHealth(layout, i)) === undefined, 60_000, join(layout.stateDir, 'logs', `${kuboName(region)}.log`));
  }
  // Peer at runtime too, so a region added to a running stack is reached without restarts.
  for (const [i] of layout.regions.entries()) {
    for (const [j, other] of layout.regions.entries()) {
      if (i === j) continue;
      const addr = `${swarmAddr(layout, j)}/p2p/${peerId(layout, other)}`;
      const res = await fetch(`${kuboApiUrl(layout, i)}/api/v0/swarm/peering/add?arg=${encodeURIComponent(addr)}`, { method: 'POST' });
      if (!res.ok) throw new Error(`Kubo: peering ${layout.regions[i]} -> ${other} failed: ${res.status} ${await res.text()}`);
    }
  }
}

export const stopKubo = (layout: StackLayout, region: string) => stopManaged(join(layout.stateDir, 'run'), kuboName(region), 'ipfs');

export async function kuboHealth(layout: StackLayout, i: number): Promise<string | undefined> {
  try {
    const res = await fetch(`${kuboApiUrl(layout, i)}/api/v0/id`, { method: 'POST', signal: AbortSignal.timeout(3000) });
    return res.ok ? undefined : `id ${res.status}`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
