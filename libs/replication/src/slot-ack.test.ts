import { describe, expect, it } from 'vitest';
import { slotAckArgument } from './slot-ack.js';

// pg-logical-replication 2.5 sends `lsn + 1` as the flush position (see slot-ack.ts).
const libraryFlushPosition = (arg: string): bigint => {
  const [hi, lo] = arg.split('/').map((x) => parseInt(x, 16)) as [number, number];
  return lo === 0xffffffff ? BigInt(hi + 1) << 32n : (BigInt(hi) << 32n) + BigInt(lo + 1);
};

describe('slotAckArgument', () => {
  it('makes the flushed position equal the commit end LSN, so a commit record starting there is not skipped', () => {
    // Seen in CI: a commit ending at 0/3C45190 and the next transaction's commit record at 0/3C45190.
    expect(libraryFlushPosition(slotAckArgument('0/3C45190'))).toBe(0x3c45190n);
    expect(libraryFlushPosition(slotAckArgument('1/0'))).toBe(0x100000000n);
    expect(slotAckArgument('1/0')).toBe('0/FFFFFFFF');
  });

  it('never goes below zero', () => {
    expect(slotAckArgument('0/0')).toBe('0/0');
  });
});
