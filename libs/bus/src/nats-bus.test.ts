import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { waitUntil } from './backoff.js';
import { createBus } from './create-bus.js';
import { natsServerSupported } from './nats-bus.js';

describe('natsServerSupported', () => {
  it('accepts 2.11.0 and newer (priority groups), refuses older and unreadable versions', () => {
    for (const v of ['2.11.0', '2.11.4', '2.12.0-beta.1', '2.15.2', '3.0.0']) expect(natsServerSupported(v), v).toBe(true);
    for (const v of ['2.10.29', '2.9.0', '1.4.1', '2.11', '', 'dev']) expect(natsServerSupported(v), v).toBe(false);
  });
});

describe('NATS connect', () => {
  it('keeps retrying a server it cannot reach (an agent may start before its broker) until closed', async () => {
    // A port nothing listens on: every attempt is refused by the kernel.
    const srv = createServer();
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const { port } = srv.address() as AddressInfo;
    await new Promise((resolve) => srv.close(resolve));
    const warns: string[] = [];
    const bus = createBus({ kind: 'nats', servers: [`127.0.0.1:${port}`], prefix: 'rs', clientId: 'connect-test', reconnect: { initialMs: 10, maxMs: 20 }, log: { warn: (_o, m) => warns.push(m), info: () => undefined } });
    let settled = false;
    const connecting = bus.connect();
    connecting.then(
      () => (settled = true),
      () => (settled = true),
    );
    expect(await waitUntil(() => warns.filter((w) => w === 'bus cannot connect to NATS; retrying').length >= 3, 10_000)).toBe(true);
    expect(settled).toBe(false);
    await bus.close();
    await expect(connecting).rejects.toMatchObject({ code: 'RS_BUS_CLOSED' });
  });
});
