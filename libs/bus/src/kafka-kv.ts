// Key-value buckets on Kafka: one compacted single-partition topic per bucket, read
// into memory by a group-less tail consumer. Reads first catch up to the topic's end
// offset, so a value written by another process before the read is seen.
import { randomUUID } from 'node:crypto';
import { RegionsyncError } from '@regionsync/protocol';
import { waitUntil } from './backoff.js';
import type { KafkaBus } from './kafka-bus.js';
import { errorMessage } from './options.js';
import { kafkaKvTopic } from './topology.js';
import type { KeyValue } from './types.js';

const CATCH_UP_MS = 15_000;

export async function openKafkaKv(bus: KafkaBus, bucket: string, closing: AbortSignal): Promise<KeyValue> {
  const topic = kafkaKvTopic(bus.opts.prefix, bucket);
  await bus.ensureTopics([{ topic, partitions: 1, compact: true }]);
  const values = new Map<string, Uint8Array>();
  let position = -1n; // offset of the last record applied
  // A throwaway group id: this consumer never commits, it always reads from the start.
  const consumer = bus.kafka.consumer({ groupId: `${bus.opts.clientId}-kv-${randomUUID()}`, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        const key = message.key?.toString();
        if (key !== undefined) {
          if (message.value === null) values.delete(key);
          else values.set(key, new Uint8Array(message.value));
        }
        position = BigInt(message.offset);
      },
    });
  } catch (err) {
    await consumer.disconnect().catch(() => undefined);
    throw new RegionsyncError('RS_BUS_CONSUMER', `kv ${bucket}: cannot read ${topic}: ${errorMessage(err)}`, { cause: err });
  }
  closing.addEventListener('abort', () => void consumer.disconnect().catch(() => undefined), { once: true });

  const catchUp = async () => {
    const offsets = await bus.adminClient().fetchTopicOffsets(topic);
    const end = BigInt(offsets[0]?.high ?? '0') - 1n;
    if (!(await waitUntil(() => position >= end, CATCH_UP_MS, 20, closing))) {
      throw new RegionsyncError('RS_BUS_CONSUMER', `kv ${bucket}: did not catch up with ${topic} within ${CATCH_UP_MS} ms`);
    }
  };
  const checkKey = (key: string) => {
    if (typeof key !== 'string' || key.length === 0 || key.length > 1024) throw new RegionsyncError('RS_CONFIG_INVALID', 'kv key: expected 1-1024 characters');
  };
  return {
    async get(key) {
      checkKey(key);
      await catchUp();
      return values.get(key);
    },
    async put(key, value) {
      checkKey(key);
      await bus.sendOne(topic, key, value);
      values.set(key, value);
    },
    async delete(key) {
      checkKey(key);
      await bus.sendOne(topic, key, null);
      values.delete(key);
    },
    async keys() {
      await catchUp();
      return [...values.keys()].sort();
    },
  };
}
