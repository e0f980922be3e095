/**
 * The object store's configuration (`store.*`, `src/store/settings.ts`): where it comes from, and
 * what is refused with an error that names the problem (and never prints a secret it read).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { storeSettings } from '../../src/store/settings';

const dir = mkdtempSync(join(tmpdir(), 'runfleet-store-settings-'));
const load = (env: Record<string, string>) => loadConfig({ cwd: dir, env: { HOME: dir, ...env } });

describe('store settings', () => {
  it('none without a bucket; from the RUNFLEET_STORE_* variables and the AWS ones otherwise', () => {
    expect(storeSettings(load({}).store, {})).toBeNull();
    const env = {
      RUNFLEET_STORE_BUCKET: 'ci-logs',
      RUNFLEET_STORE_ENDPOINT: 'http://127.0.0.1:9000',
      RUNFLEET_STORE_PREFIX: 'fleet-a/',
      AWS_ACCESS_KEY_ID: 'AKIA',
      AWS_SECRET_ACCESS_KEY: 'shh',
    };
    expect(storeSettings(load(env).store, env)).toEqual({
      bucket: 'ci-logs',
      prefix: 'fleet-a/',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIA', secretAccessKey: 'shh' },
    });
    // AWS itself: virtual-host style, and the SDK's own chain (an instance role) without variables.
    const aws = storeSettings(load({ RUNFLEET_STORE_BUCKET: 'ci-logs' }).store, {});
    expect(aws).toEqual({ bucket: 'ci-logs', prefix: 'runfleet/', region: 'us-east-1', forcePathStyle: false });
  });

  it('refuses a bad bucket, prefix, endpoint or interval, naming where it came from', () => {
    expect(() => load({ RUNFLEET_STORE_BUCKET: 'Bad_Bucket' })).toThrow(
      /RUNFLEET_STORE_BUCKET: must be an S3 bucket name/,
    );
    expect(() => load({ RUNFLEET_STORE_PREFIX: '../x' })).toThrow(/RUNFLEET_STORE_PREFIX: must be folder names/);
    expect(() => load({ RUNFLEET_STORE_ENDPOINT: 'file:///etc/passwd' })).toThrow(
      /RUNFLEET_STORE_ENDPOINT: must be an http\(s\):\/\/ URL/,
    );
    expect(() => load({ RUNFLEET_STORE_LOG_SHIP_SECONDS: '0' })).toThrow(
      /RUNFLEET_STORE_LOG_SHIP_SECONDS: must be at least 0.1/,
    );
  });

  it('reads a credentials file, and refuses a broken one without printing what it holds', () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'accessKeyId: AKIAFILE\nsecretAccessKey: from-the-file\n');
    const env = {
      RUNFLEET_STORE_BUCKET: 'ci-logs',
      RUNFLEET_STORE_CREDENTIALS_FILE: good,
      AWS_ACCESS_KEY_ID: 'ignored',
    };
    expect(storeSettings(load(env).store, env)?.credentials).toEqual({
      accessKeyId: 'AKIAFILE',
      secretAccessKey: 'from-the-file',
    });
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'accessKeyId: AKIAFILE\nsecret: do-not-print-me\n');
    const badEnv = { RUNFLEET_STORE_BUCKET: 'ci-logs', RUNFLEET_STORE_CREDENTIALS_FILE: bad };
    let message = '';
    try {
      storeSettings(load(badEnv).store, badEnv);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/store.credentialsFile .*bad.yaml: expected accessKeyId and secretAccessKey/);
    expect(message).not.toContain('do-not-print-me');
    const missing = { RUNFLEET_STORE_BUCKET: 'ci-logs', RUNFLEET_STORE_CREDENTIALS_FILE: join(dir, 'none') };
    expect(() => storeSettings(load(missing).store, missing)).toThrow(/store.credentialsFile .*none: ENOENT/);
  });
});
