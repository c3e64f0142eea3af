import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { errorCode, formatHlc, isRetryable, type ChangeBody } from '@regionsync/protocol';
import { Applier } from './apply.js';
import { createReplicationMetrics } from './metrics.js';

const NOW = 1_800_000_000_000;
const body = (wallMs: number): ChangeBody => ({
  sourceRegion: 'eu-west-1', destination: 'us-east-1', commitLsn: '0/16B3748', commitTime: new Date(wallMs).toISOString(), xid: 1,
  hlc: formatHlc({ wallMs, logical: 0 }), vclock: {}, chunk: { index: 0, last: true }, rows: [],
});

describe('clock skew guard', () => {
  // The guard runs before any database work, so an unreachable URL proves nothing was touched.
  const metrics = createReplicationMetrics(new Registry());
  const applier = new Applier({ region: 'us-east-1', connectionString: 'postgres://nobody@127.0.0.1:1/none', tables: [], log: pino({ level: 'silent' }), metrics, maxClockSkewMs: 5000, now: () => NOW });

  it('refuses a source more than the allowed skew ahead, retryably, and raises the alarm', async () => {
    const err = await applier.apply(body(NOW + 60_000)).catch((e: unknown) => e);
    expect(errorCode(err)).toBe('RS_REPLICATION_CLOCK_SKEW');
    expect(isRetryable(err)).toBe(true);
    expect((err as Error).message).toMatch(/60000 ms ahead of the local clock \(limit 5000 ms\)/);
    expect(applier.skewAlarms.get('eu-west-1')).toBe(60_000);
    expect((await metrics.clockSkewRefusals.get()).values[0]?.value).toBe(1);
  });

  it('lets a source within the allowed skew through (and clears the alarm)', async () => {
    const err = await applier.apply(body(NOW + 4_000)).catch((e: unknown) => e);
    expect(errorCode(err)).not.toBe('RS_REPLICATION_CLOCK_SKEW'); // it got as far as connecting
    expect(applier.skewAlarms.has('eu-west-1')).toBe(false);
  });
});
