import { join } from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { StackLayout } from '../config.js';
import { binPath, type Log } from '../install.js';
import { assertPortFree, ensureDir, pidFile, runningPid, startDetached, stopManaged, waitFor } from '../process.js';

// Node 20 is the supported runtime; the SDK's notice about Node 22 would clutter every log.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const NAME = 'minio';
export const S3_ACCESS_KEY = 'regionsync';
export const S3_SECRET_KEY = 'regionsync-secret';
export const S3_REGION = 'us-east-1'; // MinIO's signing region; buckets carry the regionsync region in their name
export const bucketName = (region: string) => `regionsync-${region}`;
export const s3Endpoint = (layout: StackLayout) => `http://127.0.0.1:${layout.ports.minio}`;

export function s3Client(layout: StackLayout): S3Client {
  return new S3Client({ endpoint: s3Endpoint(layout), region: S3_REGION, forcePathStyle: true, credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY } });
}

export async function startMinio(layout: StackLayout, log: Log): Promise<void> {
  const runDir = join(layout.stateDir, 'run');
  if (runningPid(pidFile(runDir, NAME), 'minio') === undefined) {
    await assertPortFree(layout.ports.minio, 'MinIO');
    log(`starting MinIO on port ${layout.ports.minio}`);
    const dir = ensureDir(join(layout.stateDir, 'minio'));
    startDetached(runDir, join(layout.stateDir, 'logs'), {
      name: NAME,
      command: binPath(layout, 'minio'),
      args: ['server', dir, '--address', `127.0.0.1:${layout.ports.minio}`, '--console-address', `127.0.0.1:${layout.ports.minioConsole}`, '--quiet'],
      env: { ...process.env, MINIO_ROOT_USER: S3_ACCESS_KEY, MINIO_ROOT_PASSWORD: S3_SECRET_KEY, MINIO_BROWSER: 'off', MINIO_UPDATE: 'off', MINIO_CALLHOME_ENABLE: 'off' },
    });
  }
  await waitFor('MinIO', async () => (await minioHealth(layout)) === undefined, 60_000, join(layout.stateDir, 'logs', 'minio.log'));
  const s3 = s3Client(layout);
  try {
    for (const region of layout.regions) {
      const Bucket = bucketName(region);
      const exists = await s3.send(new HeadBucketCommand({ Bucket })).then(() => true, () => false);
      if (!exists) await s3.send(new CreateBucketCommand({ Bucket }));
    }
  } finally {
    s3.destroy();
  }
}

export const stopMinio = (layout: StackLayout) => stopManaged(join(layout.stateDir, 'run'), NAME, 'minio');

export async function minioHealth(layout: StackLayout): Promise<string | undefined> {
  try {
    const res = await fetch(`${s3Endpoint(layout)}/minio/health/live`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? undefined : `health ${res.status}`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
