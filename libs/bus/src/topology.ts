// Which streams (NATS) or topics (Kafka) a topology needs, and which stream holds a
// subject. Pure, so the mapping is unit-tested and identical in every region.
import { auditSubject, cacheSubject, changesSubject, conflictsSubject, contentSubject, controlSubject, deadLetterSubject, heartbeatsSubject, RegionsyncError } from '@regionsync/protocol';

export const FAMILIES = ['changes', 'heartbeats', 'cache', 'content', 'audit', 'control', 'conflicts', 'dlq'] as const;
export type Family = (typeof FAMILIES)[number];

export interface StreamSpec {
  name: string;
  subjects: string[];
  family: Family;
}

/** JetStream stream names may not contain dots. */
export function streamBase(prefix: string): string {
  return prefix.replace(/\./g, '_');
}

/**
 * One stream per destination for changes: message ids do not name the destination, so
 * de-duplication must be scoped to it. Other families share one stream each.
 */
export function natsStreams(prefix: string, regions: string[]): StreamSpec[] {
  const base = streamBase(prefix);
  const specs: StreamSpec[] = regions.map((r) => ({ name: `${base}-changes-${r}`, subjects: [changesSubject(prefix, r)], family: 'changes' }));
  for (const family of ['heartbeats', 'cache', 'content', 'audit'] as const) specs.push({ name: `${base}-${family}`, subjects: [`${prefix}.${family}.*`], family });
  specs.push({ name: `${base}-control`, subjects: [controlSubject(prefix)], family: 'control' });
  specs.push({ name: `${base}-conflicts`, subjects: [conflictsSubject(prefix)], family: 'conflicts' });
  specs.push({ name: `${base}-dlq`, subjects: [`${prefix}.dlq.>`], family: 'dlq' });
  return specs;
}

/** The stream that stores `subject`, or an RS_BUS_CONSUMER error naming it. */
export function natsStreamFor(prefix: string, subject: string): string {
  const base = streamBase(prefix);
  if (!subject.startsWith(`${prefix}.`)) throw new RegionsyncError('RS_BUS_CONSUMER', `subject ${subject} is outside the bus prefix ${prefix}`, { retryable: false });
  const [family, ...rest] = subject.slice(prefix.length + 1).split('.');
  switch (family) {
    case 'changes':
      if (rest.length !== 1) break;
      return `${base}-changes-${rest[0]}`;
    case 'heartbeats':
    case 'cache':
    case 'content':
    case 'audit':
      if (rest.length !== 1) break;
      return `${base}-${family}`;
    case 'control':
    case 'conflicts':
      if (rest.length !== 0) break;
      return `${base}-${family}`;
    case 'dlq':
      if (rest.length === 0) break;
      return `${base}-dlq`;
  }
  throw new RegionsyncError('RS_BUS_CONSUMER', `subject ${subject} belongs to no regionsync stream`, { retryable: false });
}

export interface TopicSpec {
  topic: string;
  partitions: number;
}

/**
 * Kafka: one topic per subject (subject names are valid topic names), plus one
 * dead-letter topic per subject because auto-creation is off. Changes topics get one
 * partition per region so sources (the record key) spread out while each keeps order.
 */
export function kafkaTopics(prefix: string, regions: string[]): TopicSpec[] {
  const subjects: TopicSpec[] = [];
  for (const r of regions) {
    subjects.push({ topic: changesSubject(prefix, r), partitions: Math.max(1, regions.length) });
    for (const s of [heartbeatsSubject, cacheSubject, contentSubject, auditSubject]) subjects.push({ topic: s(prefix, r), partitions: 1 });
  }
  subjects.push({ topic: controlSubject(prefix), partitions: 1 }, { topic: conflictsSubject(prefix), partitions: 1 });
  return [...subjects, ...subjects.map((t) => ({ topic: deadLetterSubject(prefix, t.topic), partitions: 1 }))];
}

/** The compacted topic behind a Kafka key-value bucket. */
export function kafkaKvTopic(prefix: string, bucket: string): string {
  return `${prefix}.kv.${bucket}`;
}

export function natsKvBucket(prefix: string, bucket: string): string {
  return `${streamBase(prefix)}_${bucket}`;
}

export function checkBucketName(bucket: string): void {
  if (typeof bucket !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(bucket)) {
    throw new RegionsyncError('RS_CONFIG_INVALID', 'kv bucket: expected 1-63 characters of [a-z0-9-] starting with a letter or digit');
  }
}
