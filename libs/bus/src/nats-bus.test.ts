import { describe, expect, it } from 'vitest';
import { natsServerSupported } from './nats-bus.js';

describe('natsServerSupported', () => {
  it('accepts 2.11.0 and newer (priority groups), refuses older and unreadable versions', () => {
    for (const v of ['2.11.0', '2.11.4', '2.12.0-beta.1', '2.15.2', '3.0.0']) expect(natsServerSupported(v), v).toBe(true);
    for (const v of ['2.10.29', '2.9.0', '1.4.1', '2.11', '', 'dev']) expect(natsServerSupported(v), v).toBe(false);
  });
});
