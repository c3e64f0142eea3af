import { describe, expect, it } from 'vitest';
import { auditSubject, cacheSubject, changesSubject, conflictsSubject, controlSubject, deadLetterSubject, heartbeatsSubject } from '@regionsync/protocol';
import { kafkaTopics, natsStreamFor, natsStreams } from './topology.js';

const regions = ['us-east-1', 'eu-west-1'];

describe('natsStreams / natsStreamFor', () => {
  it('maps every subject of the topology to the stream that captures it', () => {
    const p = 'rs.t1';
    const specs = natsStreams(p, regions);
    const subjects = [
      ...regions.flatMap((r) => [changesSubject(p, r), heartbeatsSubject(p, r), cacheSubject(p, r), auditSubject(p, r)]),
      controlSubject(p),
      conflictsSubject(p),
      deadLetterSubject(p, changesSubject(p, 'eu-west-1')),
    ];
    for (const s of subjects) {
      const name = natsStreamFor(p, s);
      expect(specs.map((x) => x.name)).toContain(name);
      expect(name).not.toContain('.');
    }
    expect(natsStreamFor(p, changesSubject(p, 'eu-west-1'))).toBe('rs_t1-changes-eu-west-1');
  });
  it('rejects subjects outside the prefix', () => {
    expect(() => natsStreamFor('rs', 'other.changes.x')).toThrow(/outside the bus prefix/);
    expect(() => natsStreamFor('rs', 'rs.unknown')).toThrow(/no regionsync stream/);
  });
});

describe('kafkaTopics', () => {
  it('has a topic and a dead-letter topic per subject, changes partitioned per region', () => {
    const t = kafkaTopics('regionsync', regions);
    const names = t.map((x) => x.topic);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('regionsync.dlq.changes.eu-west-1');
    expect(t.find((x) => x.topic === 'regionsync.changes.us-east-1')?.partitions).toBe(2);
  });
});
