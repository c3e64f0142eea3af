// Option validation and defaults. Bad options are configuration errors (RS_CONFIG_INVALID
// naming the option), raised at construction so a typo never surfaces as a runtime stall.
import { DEFAULT_PREFIX, RegionsyncError, validatePrefix } from '@regionsync/protocol';
import type { BackoffPolicy } from './backoff.js';
import type { BusKind, BusLogger, BusOptions, ConsumeOptions } from './types.js';

export const DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
// Both brokers are configured for 8 MB; a larger limit here would only move the failure.
export const BROKER_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_IN_FLIGHT = 256;
export const DEFAULT_MAX_DELIVERIES = 5;
export const DEFAULT_MAX_BATCH = 64;
export const DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024;
export const DEFAULT_PUBLISH_TIMEOUT_MS = 10_000;

export interface ResolvedBusOptions {
  kind: BusKind;
  servers: string[];
  prefix: string;
  clientId: string;
  maxPayloadBytes: number;
  log: BusLogger;
  backoff: BackoffPolicy;
  publishTimeoutMs: number;
}

export interface ResolvedConsumeOptions extends ConsumeOptions {
  maxInFlight: number;
  maxDeliveries: number;
  maxBatch: number;
  maxBatchBytes: number;
}

const silent: BusLogger = { warn: () => undefined, info: () => undefined };
const DURABLE_PATTERN = /^[A-Za-z0-9_-]{1,200}$/;

function invalid(what: string): never {
  throw new RegionsyncError('RS_CONFIG_INVALID', `bus options: ${what}`);
}

function positiveInt(value: unknown, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) invalid(`${name}: expected an integer between 1 and ${max}`);
  return value;
}

export function resolveBusOptions(opts: BusOptions): ResolvedBusOptions {
  if (opts === null || typeof opts !== 'object') invalid('expected an object');
  if (opts.kind !== 'nats' && opts.kind !== 'kafka') invalid('kind: expected nats|kafka');
  if (!Array.isArray(opts.servers) || opts.servers.length === 0 || !opts.servers.every((s) => typeof s === 'string' && s.length > 0)) {
    invalid('servers: expected a non-empty list of broker addresses');
  }
  if (opts.kind === 'kafka' && !opts.servers.every((s) => /^[^\s/:]+:\d+$/.test(s))) invalid('servers: expected Kafka brokers as host:port');
  if (typeof opts.clientId !== 'string' || !/^[A-Za-z0-9._-]{1,200}$/.test(opts.clientId)) invalid('clientId: expected 1-200 characters of [A-Za-z0-9._-]');
  const prefix = validatePrefix(opts.prefix ?? DEFAULT_PREFIX);
  const initialMs = positiveInt(opts.reconnect?.initialMs, 'reconnect.initialMs', 100, 60_000);
  const maxMs = positiveInt(opts.reconnect?.maxMs, 'reconnect.maxMs', 5_000, 600_000);
  if (maxMs < initialMs) invalid('reconnect.maxMs: expected at least reconnect.initialMs');
  return {
    kind: opts.kind,
    servers: [...opts.servers],
    prefix,
    clientId: opts.clientId,
    maxPayloadBytes: positiveInt(opts.maxPayloadBytes, 'maxPayloadBytes', DEFAULT_MAX_PAYLOAD_BYTES, BROKER_MAX_PAYLOAD_BYTES - 64 * 1024),
    log: opts.log ?? silent,
    backoff: { initialMs, maxMs },
    publishTimeoutMs: positiveInt(opts.publishTimeoutMs, 'publishTimeoutMs', DEFAULT_PUBLISH_TIMEOUT_MS, 600_000),
  };
}

export function resolveConsumeOptions(opts: ConsumeOptions): ResolvedConsumeOptions {
  if (opts === null || typeof opts !== 'object') invalid('consume: expected an object');
  if (typeof opts.subject !== 'string' || opts.subject.length === 0) invalid('consume.subject: expected a subject');
  if (typeof opts.durable !== 'string' || !DURABLE_PATTERN.test(opts.durable)) invalid('consume.durable: expected 1-200 characters of [A-Za-z0-9_-]');
  if (typeof opts.handler !== 'function') invalid('consume.handler: expected a function');
  if (opts.batchHandler !== undefined && typeof opts.batchHandler !== 'function') invalid('consume.batchHandler: expected a function');
  if (!(opts.signal instanceof AbortSignal)) invalid('consume.signal: expected an AbortSignal');
  return {
    ...opts,
    maxInFlight: positiveInt(opts.maxInFlight, 'consume.maxInFlight', DEFAULT_MAX_IN_FLIGHT, 100_000),
    maxDeliveries: positiveInt(opts.maxDeliveries, 'consume.maxDeliveries', DEFAULT_MAX_DELIVERIES, 1_000),
    maxBatch: positiveInt(opts.maxBatch, 'consume.maxBatch', DEFAULT_MAX_BATCH, 10_000),
    maxBatchBytes: positiveInt(opts.maxBatchBytes, 'consume.maxBatchBytes', DEFAULT_MAX_BATCH_BYTES, 1024 * 1024 * 1024),
  };
}

/** Reject a payload over the limit before it reaches the broker. */
export function checkPayloadSize(subject: string, data: Uint8Array, limit: number): void {
  if (!(data instanceof Uint8Array)) throw new RegionsyncError('RS_BUS_PUBLISH', `publish to ${subject}: data must be a Uint8Array`, { retryable: false });
  if (data.byteLength > limit) {
    throw new RegionsyncError('RS_PROTOCOL_TOO_LARGE', `publish to ${subject}: payload of ${data.byteLength} bytes exceeds the bus limit of ${limit} bytes`, {
      details: { subject, size: data.byteLength, limit },
    });
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
