export type { Bus, BusHealth, BusKind, BusLogger, BusMessage, BusOptions, ConsumeOptions, Consumer, ConsumerStats, KeyValue, PublishAck, PublishOptions, Topology } from './types.js';
export { HEADERS } from './types.js';
export { createBus, type CreateBusExtras } from './create-bus.js';
export { DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_DELIVERIES, DEFAULT_PUBLISH_TIMEOUT_MS } from './options.js';
export { backoffDelay, sleep, waitUntil, type BackoffPolicy } from './backoff.js';
export { natsStreams, natsStreamFor, kafkaTopics } from './topology.js';
