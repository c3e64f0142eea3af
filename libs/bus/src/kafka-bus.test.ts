import { describe, expect, it } from 'vitest';
import { producerStateError } from './kafka-bus.js';

describe('producerStateError', () => {
  it('names the broker error type when the producer sequence state is unusable', () => {
    expect(producerStateError({ type: 'OUT_OF_ORDER_SEQUENCE_NUMBER', message: 'x' })).toBe('OUT_OF_ORDER_SEQUENCE_NUMBER');
    expect(producerStateError({ message: 'The broker received an out of order sequence number' })).toBe('OUT_OF_ORDER_SEQUENCE_NUMBER');
  });

  it('looks through wrapping errors (retries exceeded, cause, aggregated errors)', () => {
    expect(producerStateError({ name: 'KafkaJSNumberOfRetriesExceeded', originalError: { type: 'UNKNOWN_PRODUCER_ID' } })).toBe('UNKNOWN_PRODUCER_ID');
    expect(producerStateError(new Error('publish failed', { cause: { type: 'INVALID_PRODUCER_EPOCH' } }))).toBe('INVALID_PRODUCER_EPOCH');
    expect(producerStateError({ errors: [{ type: 'NOT_LEADER_FOR_PARTITION' }, { type: 'OUT_OF_ORDER_SEQUENCE_NUMBER' }] })).toBe('OUT_OF_ORDER_SEQUENCE_NUMBER');
  });

  it('leaves connection errors alone (the producer itself recovers from those)', () => {
    expect(producerStateError(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:49200'))).toBeUndefined();
    expect(producerStateError({ type: 'NOT_LEADER_FOR_PARTITION' })).toBeUndefined();
    expect(producerStateError(undefined)).toBeUndefined();
    expect(producerStateError('text')).toBeUndefined();
  });
});
