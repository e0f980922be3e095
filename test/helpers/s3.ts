/**
 * A real S3 endpoint for tests: moto's server (the one the EC2 tests use, `test/helpers/moto.ts`)
 * serves S3 too. Each call makes a bucket of its own.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { createS3Store, type ObjectStore, type StoreSettings } from '../../src/store/object-store';
import { startMoto, type MotoServer } from './moto';
import { projectRoot } from './processes';
import { uniqueName } from './temporal';

/** moto takes any credentials; real ones must never reach a test. */
export const S3_TEST_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export interface TestS3 {
  moto: MotoServer;
  settings: StoreSettings;
  store: ObjectStore;
  /** The variables that point a `runfleet` process at this bucket. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startS3(): Promise<TestS3> {
  const moto = await startMoto({ projectRoot });
  return { moto, ...(await bucketOn(moto.endpoint)), stop: () => moto.stop() };
}

/** A bucket of its own on a running moto (the one of a fleet testbed), and a store on it. */
export async function bucketOn(endpoint: string): Promise<Pick<TestS3, 'settings' | 'store' | 'env'>> {
  const bucket = uniqueName('logs')
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-');
  const client = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: S3_TEST_CREDENTIALS,
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  const settings: StoreSettings = {
    bucket,
    prefix: 'runfleet/',
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: S3_TEST_CREDENTIALS,
  };
  return {
    settings,
    store: createS3Store(settings),
    env: {
      RUNFLEET_STORE_BUCKET: bucket,
      RUNFLEET_STORE_ENDPOINT: endpoint,
      RUNFLEET_STORE_LOG_SHIP_SECONDS: '0.5',
      AWS_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey,
    },
  };
}
