/**
 * The object store's settings from the configuration (`store.*`), read once at the process edge:
 * the credentials file, or the AWS variables of the environment the CLI hands in.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Config } from '../config';
import { RunfleetError } from '../errors';
import { parseYamlText } from '../structured-file';
import type { StoreSettings } from './object-store';

const CredentialsSchema = z.strictObject({
  accessKeyId: z.string().min(1, 'must not be empty').max(256),
  secretAccessKey: z.string().min(1, 'must not be empty').max(1024),
  sessionToken: z.string().max(8192).optional(),
});

/** The store's settings, or null when none is configured (`store.bucket` unset). */
export function storeSettings(
  store: Config['store'],
  env: Readonly<Record<string, string | undefined>>,
): StoreSettings | null {
  if (!store.bucket) return null;
  return {
    bucket: store.bucket,
    prefix: store.prefix,
    region: store.region,
    ...(store.endpoint ? { endpoint: store.endpoint } : {}),
    forcePathStyle: store.forcePathStyle ?? store.endpoint !== undefined,
    ...credentials(store.credentialsFile, env),
  };
}

function credentials(
  file: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): Pick<StoreSettings, 'credentials'> {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new RunfleetError('InvalidConfig', `store.credentialsFile ${file}: ${(err as Error).message}`);
    }
    const { value, problems } = parseYamlText(text);
    const parsed = CredentialsSchema.safeParse(value);
    if (problems.length > 0 || !parsed.success) {
      const why =
        problems[0]?.message ??
        parsed.error?.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ');
      throw new RunfleetError(
        'InvalidConfig',
        `store.credentialsFile ${file}: expected accessKeyId and secretAccessKey (${why ?? 'unreadable'})`,
      );
    }
    const { accessKeyId, secretAccessKey, sessionToken } = parsed.data;
    return { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } };
  }
  const accessKeyId = env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
  if (accessKeyId && secretAccessKey) {
    const sessionToken = env['AWS_SESSION_TOKEN'];
    return { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } };
  }
  // Nothing here: the SDK's own chain (shared files, web identity, the instance's role).
  return {};
}
