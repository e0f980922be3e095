/**
 * The object store that keeps what must outlive a runner (task logs; see `src/store/task-logs.ts`),
 * behind an S3 API: AWS S3 or any server that speaks it (moto in the tests, MinIO, Ceph). Runners
 * write to it and control workers read from it; clients never hold its credentials.
 */
import {
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { RunfleetError } from '../errors';

/** A store's settings (`store` in the configuration). */
export interface StoreSettings {
  bucket: string;
  /** Every key starts with it (`runfleet/`); '' for the bucket's root. */
  prefix: string;
  region: string;
  /** An S3-compatible server instead of AWS (`http://127.0.0.1:5000`). */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`), as most S3-compatible servers want. */
  forcePathStyle: boolean;
  /** Static credentials; without them the SDK's default chain (instance role, web identity...). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export interface StoredObject {
  /** The key below the store's prefix. */
  key: string;
  size: number;
}

export interface ObjectStore {
  /** `s3://bucket/prefix`, for messages. */
  readonly where: string;
  put(key: string, body: Uint8Array | string): Promise<void>;
  /** The object's bytes (`range`: inclusive byte positions), or null when there is none. */
  get(key: string, range?: { start: number; end: number }): Promise<Buffer | null>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): Promise<StoredObject[]>;
  /** Uploads a file (an archive), streamed. */
  putFile(key: string, path: string): Promise<void>;
  /** Downloads an object into a file (mode 0600), streamed; false when there is none. */
  getFile(key: string, path: string): Promise<boolean>;
  /** A URL that reads the object for `seconds` without credentials (a presigned GET). */
  link(key: string, seconds: number): Promise<string>;
}

/** One request's time at most: a store that hangs must not hold a task's end or a log read. */
const REQUEST_TIMEOUT_MS = 15_000;

export function createS3Store(settings: StoreSettings): ObjectStore {
  const client = new S3Client({
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
    // Retries belong to the callers (the log shipper retries for as long as it takes).
    maxAttempts: 2,
    // Not the SDK's streamed checksum trailer (aws-chunked): archives carry their SHA-256 in a
    // header instead (putFile), which S3 checks; moto took 38 s for 100 MB sent the other way.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    requestHandler: { requestTimeout: REQUEST_TIMEOUT_MS, connectionTimeout: 5_000 },
  });
  const full = (key: string) => `${settings.prefix}${key}`;
  const where = `s3://${settings.bucket}/${settings.prefix}`;
  const failed = (what: string, err: unknown) =>
    new RunfleetError(
      'ComponentUnavailable',
      `object store ${where}: ${what} failed: ${err instanceof S3ServiceException ? `${err.name}: ${err.message}` : (err as Error).message}`,
    );
  return {
    where,
    async put(key, body) {
      try {
        await client.send(new PutObjectCommand({ Bucket: settings.bucket, Key: full(key), Body: body }));
      } catch (err) {
        throw failed(`writing ${key}`, err);
      }
    },
    async get(key, range) {
      try {
        const answer = await client.send(
          new GetObjectCommand({
            Bucket: settings.bucket,
            Key: full(key),
            ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
          }),
        );
        return Buffer.from((await answer.Body?.transformToByteArray()) ?? new Uint8Array());
      } catch (err) {
        if (err instanceof NoSuchKey) return null;
        throw failed(`reading ${key}`, err);
      }
    },
    async putFile(key, path) {
      try {
        const size = statSync(path).size;
        await client.send(
          new PutObjectCommand({
            Bucket: settings.bucket,
            Key: full(key),
            Body: createReadStream(path),
            ContentLength: size,
            // S3 refuses an object whose bytes do not match it (moto does not check).
            ChecksumSHA256: await fileSha256(path),
          }),
        );
      } catch (err) {
        throw failed(`writing ${key}`, err);
      }
    },
    async getFile(key, path) {
      try {
        const answer = await client.send(new GetObjectCommand({ Bucket: settings.bucket, Key: full(key) }));
        await pipeline(answer.Body as Readable, createWriteStream(path, { mode: 0o600 }));
        return true;
      } catch (err) {
        if (err instanceof NoSuchKey) return false;
        throw failed(`reading ${key}`, err);
      }
    },
    link(key, seconds) {
      return getSignedUrl(client, new GetObjectCommand({ Bucket: settings.bucket, Key: full(key) }), {
        expiresIn: seconds,
      });
    },
    async list(prefix) {
      const found: StoredObject[] = [];
      let token: string | undefined;
      try {
        do {
          const page = await client.send(
            new ListObjectsV2Command({
              Bucket: settings.bucket,
              Prefix: full(prefix),
              ...(token ? { ContinuationToken: token } : {}),
            }),
          );
          for (const o of page.Contents ?? []) {
            if (o.Key) found.push({ key: o.Key.slice(settings.prefix.length), size: o.Size ?? 0 });
          }
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
      } catch (err) {
        throw failed(`listing ${prefix}`, err);
      }
      return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },
  };
}

/** base64 of a file's SHA-256, read as a stream. */
async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('base64');
}
