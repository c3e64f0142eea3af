import { describe, expect, it } from 'vitest';
import { errorCode } from '@regionsync/protocol';
import { checkPayloadSize, resolveBusOptions, resolveConsumeOptions } from './options.js';
import type { BusOptions } from './types.js';

const base: BusOptions = { kind: 'nats', servers: ['nats://127.0.0.1:4222'], clientId: 'agent-us-east-1' };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return errorCode(e);
  }
  return undefined;
}

describe('resolveBusOptions', () => {
  it('fills defaults', () => {
    const r = resolveBusOptions(base);
    expect(r.prefix).toBe('regionsync');
    expect(r.maxPayloadBytes).toBe(4 * 1024 * 1024);
    expect(r.backoff).toEqual({ initialMs: 100, maxMs: 5_000 });
  });
  it.each([
    ['kind', { ...base, kind: 'rabbit' as never }],
    ['servers', { ...base, servers: [] }],
    ['kafka host:port', { ...base, kind: 'kafka' as const, servers: ['nats://x:1'] }],
    ['clientId', { ...base, clientId: 'has space' }],
    ['prefix', { ...base, prefix: 'Bad.Prefix' }],
    ['maxPayloadBytes above broker', { ...base, maxPayloadBytes: 9 * 1024 * 1024 }],
    ['reconnect order', { ...base, reconnect: { initialMs: 500, maxMs: 100 } }],
  ])('rejects bad %s with RS_CONFIG_INVALID', (_name, opts) => {
    expect(codeOf(() => resolveBusOptions(opts))).toBe('RS_CONFIG_INVALID');
  });
});

describe('resolveConsumeOptions', () => {
  const signal = new AbortController().signal;
  const handler = async () => undefined;
  it('fills defaults', () => {
    const r = resolveConsumeOptions({ subject: 'regionsync.changes.eu-west-1', durable: 'apply-eu', handler, signal });
    expect([r.maxInFlight, r.maxDeliveries]).toEqual([256, 5]);
  });
  it('rejects a bad durable name and bounds', () => {
    expect(codeOf(() => resolveConsumeOptions({ subject: 's', durable: 'a.b', handler, signal }))).toBe('RS_CONFIG_INVALID');
    expect(codeOf(() => resolveConsumeOptions({ subject: 's', durable: 'a', handler, signal, maxInFlight: 0 }))).toBe('RS_CONFIG_INVALID');
  });
});

describe('checkPayloadSize', () => {
  it('names size and limit', () => {
    try {
      checkPayloadSize('regionsync.changes.x', new Uint8Array(11), 10);
      expect.unreachable();
    } catch (e) {
      expect(errorCode(e)).toBe('RS_PROTOCOL_TOO_LARGE');
      expect((e as Error).message).toContain('11 bytes');
      expect((e as Error).message).toContain('limit of 10 bytes');
    }
    expect(() => checkPayloadSize('s', new Uint8Array(10), 10)).not.toThrow();
  });
});
