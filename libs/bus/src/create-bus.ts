import { KafkaBus, type KafkaBusExtras } from './kafka-bus.js';
import { NatsBus, type NatsBusExtras } from './nats-bus.js';
import { resolveBusOptions } from './options.js';
import type { Bus, BusOptions } from './types.js';

/** Adapter-specific knobs, mostly for tests and benchmarks (small stream limits, linger). */
export interface CreateBusExtras {
  nats?: NatsBusExtras;
  kafka?: KafkaBusExtras;
}

/** Validates the options (RS_CONFIG_INVALID) and returns an unconnected bus. */
export function createBus(opts: BusOptions, extras: CreateBusExtras = {}): Bus {
  const resolved = resolveBusOptions(opts);
  return resolved.kind === 'nats' ? new NatsBus(resolved, extras.nats) : new KafkaBus(resolved, extras.kafka);
}
