// Test-only helpers shared by the contract suite, the consumer child and the benchmark.
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { StackEnv } from '@regionsync/stack';
import { createBus } from '../create-bus.js';
import { natsStreamFor, streamBase } from '../topology.js';
import type { Bus, BusKind, BusOptions } from '../types.js';

/** A fresh prefix so a test never sees another test's streams, topics or data. */
export function randomPrefix(): string {
  return `t${randomBytes(4).toString('hex')}.rs`;
}

export function servers(env: StackEnv, kind: BusKind, viaRegion?: string): string[] {
  if (viaRegion) return kind === 'nats' ? env.regions[viaRegion]!.nats.servers : env.regions[viaRegion]!.kafka.brokers;
  return kind === 'nats' ? env.nats.servers : env.kafka.brokers;
}

export function testBus(env: StackEnv, kind: BusKind, prefix: string, clientId: string, extra: Partial<BusOptions> & { viaRegion?: string } = {}): Bus {
  const { viaRegion, ...rest } = extra;
  return createBus(
    { kind, servers: servers(env, kind, viaRegion), prefix, clientId, reconnect: { initialMs: 50, maxMs: 1_000 }, ...rest },
    { nats: { streamMaxBytes: { changes: 64 * 1024 * 1024, other: 8 * 1024 * 1024 } } },
  );
}

/** Remove a test prefix's streams (NATS) or topics (Kafka) so the shared brokers stay small. */
export async function dropPrefix(env: StackEnv, kind: BusKind, prefix: string): Promise<void> {
  if (kind === 'nats') {
    const nc = await connect({ servers: env.nats.servers, timeout: 5_000 });
    try {
      const jsm = await jetstreamManager(nc);
      const base = streamBase(prefix);
      for await (const s of jsm.streams.list()) {
        if (s.config.name.startsWith(`${base}-`) || s.config.name.startsWith(`KV_${base}_`)) await jsm.streams.delete(s.config.name);
      }
    } finally {
      await nc.close();
    }
    return;
  }
  const admin = new Kafka({ clientId: 'bus-test-cleanup', brokers: env.kafka.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
  } finally {
    await admin.disconnect();
  }
}

export function payload(n: number, size = 64): Uint8Array {
  const head = new TextEncoder().encode(JSON.stringify({ n }));
  if (head.byteLength >= size) return head;
  const out = new Uint8Array(size).fill(0x20);
  out.set(head);
  return out;
}

export function readN(data: Uint8Array): number {
  return (JSON.parse(new TextDecoder().decode(data)) as { n: number }).n;
}

/**
 * How many consumer processes are attached to a durable: NATS, the pull requests waiting
 * on it (one per consuming process once idle); Kafka, the members of its consumer group.
 */
export async function attachedConsumers(env: StackEnv, kind: BusKind, prefix: string, subject: string, durable: string): Promise<number> {
  if (kind === 'nats') {
    const nc = await connect({ servers: env.nats.servers, timeout: 5_000 });
    try {
      const jsm = await jetstreamManager(nc);
      return (await jsm.consumers.info(natsStreamFor(prefix, subject), durable)).num_waiting;
    } catch {
      return 0;
    } finally {
      await nc.close();
    }
  }
  const admin = new Kafka({ clientId: 'bus-test-groups', brokers: env.kafka.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([`${subject}/${durable}`]);
    return groups[0]?.state === 'Stable' ? groups[0].members.length : 0;
  } finally {
    await admin.disconnect();
  }
}
