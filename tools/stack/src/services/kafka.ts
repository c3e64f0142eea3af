import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { StackLayout } from '../config.js';
import { javaBinary, kafkaLibDir, type Log } from '../install.js';
import { assertPortFree, ensureDir, pidFile, run, runningPid, startDetached, stopManaged, stopPid, waitFor } from '../process.js';

const NAME = 'kafka';
// base64url of the 16 bytes "regionsync-kafka": a fixed, valid KRaft cluster id.
const CLUSTER_ID = 'cmVnaW9uc3luYy1rYWZrYQ';

export const kafkaListenerName = (i: number) => `R${i}`;

/**
 * Single-node KRaft broker. Besides its internal listener it has one listener per region
 * whose advertised address is that region's Toxiproxy port: clients only ever learn the
 * proxied address, so cutting the proxy really cuts the region off.
 */
export function kafkaProperties(layout: StackLayout, dataDir: string): string {
  const p = layout.ports;
  const regional = layout.regions.map((_, i) => ({ name: kafkaListenerName(i), listen: p.kafkaRegion(i), advertised: p.kafkaProxy(i) }));
  const listeners = [`INTERNAL://127.0.0.1:${p.kafkaInternal}`, `CONTROLLER://127.0.0.1:${p.kafkaController}`, ...regional.map((r) => `${r.name}://127.0.0.1:${r.listen}`)];
  const advertised = [`INTERNAL://127.0.0.1:${p.kafkaInternal}`, ...regional.map((r) => `${r.name}://127.0.0.1:${r.advertised}`)];
  const protocols = ['INTERNAL:PLAINTEXT', 'CONTROLLER:PLAINTEXT', ...regional.map((r) => `${r.name}:PLAINTEXT`)];
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${p.kafkaController}`,
    `listeners=${listeners.join(',')}`,
    `advertised.listeners=${advertised.join(',')}`,
    `listener.security.protocol.map=${protocols.join(',')}`,
    'inter.broker.listener.name=INTERNAL',
    'controller.listener.names=CONTROLLER',
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    'default.replication.factor=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=4',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=4',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    'message.max.bytes=8388608',
    'replica.fetch.max.bytes=8388608',
    'log.retention.hours=168',
    'log.segment.bytes=67108864',
    'num.network.threads=2',
    'num.io.threads=4',
    '',
  ].join('\n');
}

/**
 * JVM options of the broker. C1 only (TieredStopAtLevel=1): on the 2-core machine the
 * broker shares with PostgreSQL and the agents, C2 spent about 28 CPU-s compiling in the
 * broker's first minutes, exactly while the first Kafka tests and benchmark phases ran
 * (commit-to-visible p99 51-80 ms cold, 14-16 ms once C2 was done). With C1 only,
 * compiling took 0.9 CPU-s and p99 was 17 ms from the first run, for about 40 % more
 * broker CPU at 1,000 messages/s (C1 code is slower), which this load affords.
 */
export const KAFKA_JVM_OPTIONS = ['-Xms256m', '-Xmx768m', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true'];

export async function startKafka(layout: StackLayout, log: Log): Promise<void> {
  const runDir = join(layout.stateDir, 'run');
  const dir = ensureDir(join(layout.stateDir, 'kafka'));
  const dataDir = ensureDir(join(dir, 'data'));
  const propsFile = join(dir, 'server.properties');
  const props = kafkaProperties(layout, dataDir);
  const changed = !existsSync(propsFile) || readFileSync(propsFile, 'utf8') !== props;
  // The options a running broker was started with: a broker from an older checkout restarts with the current ones.
  const jvmFile = join(dir, 'jvm.options');
  const jvm = KAFKA_JVM_OPTIONS.join('\n');
  const jvmChanged = !existsSync(jvmFile) || readFileSync(jvmFile, 'utf8') !== jvm;
  const pid = runningPid(pidFile(runDir, NAME), 'kafka.Kafka');
  if (pid !== undefined && (changed || jvmChanged)) {
    log(changed ? 'Kafka listeners changed (region list changed): restarting the broker' : 'Kafka JVM options changed: restarting the broker');
    await stopPid(pid, 60_000);
  }
  writeFileSync(propsFile, props);
  writeFileSync(jvmFile, jvm);
  writeFileSync(join(dir, 'log4j.properties'), [
    'log4j.rootLogger=WARN, stdout',
    'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
    'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.server.KafkaServer=INFO',
    'log4j.logger.kafka.server.BrokerServer=INFO',
    '',
  ].join('\n'));
  const classpath = `${kafkaLibDir(layout)}/*`;
  const java = javaBinary();
  if (!existsSync(join(dataDir, 'meta.properties'))) {
    run(java, ['-cp', classpath, `-Dlog4j.configuration=file:${join(dir, 'log4j.properties')}`, 'kafka.tools.StorageTool', 'format', '-t', CLUSTER_ID, '-c', propsFile, '--ignore-formatted'], { what: 'formatting Kafka KRaft storage' });
  }
  if (runningPid(pidFile(runDir, NAME), 'kafka.Kafka') === undefined) {
    await assertPortFree(layout.ports.kafkaInternal, 'Kafka');
    log(`starting Kafka (KRaft) on port ${layout.ports.kafkaInternal}`);
    startDetached(runDir, join(layout.stateDir, 'logs'), {
      name: NAME,
      command: java,
      args: [...KAFKA_JVM_OPTIONS, `-Dlog4j.configuration=file:${join(dir, 'log4j.properties')}`, '-cp', classpath, 'kafka.Kafka', propsFile],
    });
  }
  await waitFor('Kafka', async () => (await kafkaHealth(layout)) === undefined, 120_000, join(layout.stateDir, 'logs', 'kafka.log'));
}

export const stopKafka = (layout: StackLayout) => stopManaged(join(layout.stateDir, 'run'), NAME, 'kafka.Kafka');

/** Healthy once the broker serves metadata and every regional listener accepts connections. */
export async function kafkaHealth(layout: StackLayout): Promise<string | undefined> {
  for (const port of layout.regions.map((_, i) => layout.ports.kafkaRegion(i))) {
    const err = await tcpProbe(port);
    if (err) return `port ${port}: ${err}`;
  }
  const kafka = new Kafka({ clientId: 'regionsync-stack', brokers: [`127.0.0.1:${layout.ports.kafkaInternal}`], logLevel: logLevel.NOTHING, connectionTimeout: 2000, requestTimeout: 3000, retry: { retries: 0 } });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null ? undefined : 'no controller yet';
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export function tcpProbe(port: number, host = '127.0.0.1', timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    const done = (err?: string) => {
      s.destroy();
      resolve(err);
    };
    s.setTimeout(timeoutMs, () => done('timeout'));
    s.once('connect', () => done());
    s.once('error', (e) => done(e.message));
  });
}
