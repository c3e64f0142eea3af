import type { StackLayout } from './config.js';
import { pgUrl } from './services/postgres.js';
import { redisUrl } from './services/redis.js';
import { kuboApiUrl } from './services/kubo.js';
import { bucketName, s3Endpoint, S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY } from './services/minio.js';
import { toxiproxyUrl } from './services/toxiproxy.js';

export interface S3Endpoint {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: true;
}

/** What one region sees: its own services, and the brokers only through its proxies. */
export interface RegionEnv {
  databaseUrl: string;
  redisUrl: string;
  kuboApiUrl: string;
  kuboGatewayUrl: string;
  s3: S3Endpoint;
  nats: { servers: string[]; proxy: string };
  kafka: { brokers: string[]; proxy: string };
}

export interface StackEnv {
  regionNames: string[];
  regions: Record<string, RegionEnv>;
  toxiproxy: { api: string };
  nats: { servers: string[]; monitor: string };
  kafka: { brokers: string[] };
  s3: Omit<S3Endpoint, 'bucket'>;
  stateDir: string;
}

export function stackEnv(layout: StackLayout): StackEnv {
  const p = layout.ports;
  const s3 = { endpoint: s3Endpoint(layout), region: S3_REGION, accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY, forcePathStyle: true as const };
  const regions: Record<string, RegionEnv> = {};
  layout.regions.forEach((region, i) => {
    regions[region] = {
      databaseUrl: pgUrl(layout, i),
      redisUrl: redisUrl(layout, i),
      kuboApiUrl: kuboApiUrl(layout, i),
      kuboGatewayUrl: `http://127.0.0.1:${p.kuboGateway(i)}`,
      s3: { ...s3, bucket: bucketName(region) },
      nats: { servers: [`nats://127.0.0.1:${p.natsProxy(i)}`], proxy: `nats-${region}` },
      kafka: { brokers: [`127.0.0.1:${p.kafkaProxy(i)}`], proxy: `kafka-${region}` },
    };
  });
  return {
    regionNames: [...layout.regions],
    regions,
    toxiproxy: { api: toxiproxyUrl(layout) },
    nats: { servers: [`nats://127.0.0.1:${p.nats}`], monitor: `http://127.0.0.1:${p.natsMonitor}` },
    kafka: { brokers: [`127.0.0.1:${p.kafkaInternal}`] },
    s3,
    stateDir: layout.stateDir,
  };
}
