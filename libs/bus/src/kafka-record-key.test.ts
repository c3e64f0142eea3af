import { describe, expect, it } from 'vitest';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { idAndKey } from './kafka-consumer.js';
import { orderingKeyPartitioner, recordKey, splitRecordKey } from './kafka-record-key.js';

const partitionMetadata: PartitionMetadata[] = Array.from({ length: 8 }, (_, i) => ({ partitionId: i, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));

describe('Kafka record key', () => {
  it('round-trips id and ordering key, and an id alone', () => {
    expect(splitRecordKey(recordKey('us-east-1:0/16B3748:0', 'us-east-1'))).toEqual({ id: 'us-east-1:0/16B3748:0', key: 'us-east-1' });
    expect(splitRecordKey(recordKey('x', ''))).toEqual({ id: 'x', key: '' });
    expect(splitRecordKey(recordKey('only-id', undefined))).toEqual({ id: 'only-id', key: undefined });
  });

  it('rejects a NUL inside the id or the key, naming the field', () => {
    expect(() => recordKey('a\u0000b', 'k')).toThrow(/opts\.id/);
    expect(() => recordKey('a', 'k\u0000')).toThrow(/opts\.key/);
  });

  it('places a record where the default partitioner places its ordering key, whatever the id', () => {
    const ours = orderingKeyPartitioner();
    const plain = Partitioners.DefaultPartitioner();
    for (const key of ['us-east-1', 'eu-west-1', 'eu-central-1', 'ap-south-1', 'k']) {
      const expected = plain({ topic: 't', partitionMetadata, message: { key, value: null } });
      for (const id of ['1', 'abc:2', `${key}:0/1:0`]) {
        expect(ours({ topic: 't', partitionMetadata, message: { key: recordKey(id, key), value: null } })).toBe(expected);
        expect(ours({ topic: 't', partitionMetadata, message: { key: Buffer.from(recordKey(id, key)), value: null } })).toBe(expected);
      }
    }
  });

  it('reads id and key from the record key, and from the id header of records written before', () => {
    expect(idAndKey(Buffer.from(recordKey('i1', 'us-east-1')), {})).toEqual({ id: 'i1', key: 'us-east-1' });
    expect(idAndKey(Buffer.from('us-east-1'), { 'Regionsync-Msg-Id': Buffer.from('i0') })).toEqual({ id: 'i0', key: 'us-east-1' });
    expect(idAndKey(null, undefined)).toEqual({ id: undefined, key: undefined });
  });
});
