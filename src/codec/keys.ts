/**
 * Data keys: named 256-bit AES keys, the first one current. Clients and the control worker read
 * them from the key file (`runfleet keys create`); a runner receives them sealed when it
 * registers, so its ring starts empty and is filled later (`set`).
 *
 * The key file is JSON, mode 0600:
 * `{ "version": 1, "keys": [{ "id": "k-...", "key": "<base64 of 32 bytes>", "createdAt": "..." }] }`.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import type { Config } from '../config';
import { RunfleetError } from '../errors';

/** AES-256: keys are exactly this many bytes. */
export const KEY_BYTES = 32;
const KEY_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export interface DataKey {
  id: string;
  key: Buffer;
}

/** The data keys of a process. Mutable: a runner receives its keys after it registers. */
export class KeyRing {
  private keys: DataKey[] = [];

  constructor(keys: readonly DataKey[] = []) {
    this.set(keys);
  }

  /** The key new payloads are encrypted with; null when there is none (payloads travel in clear). */
  current(): DataKey | null {
    return this.keys[0] ?? null;
  }

  get(id: string): DataKey | undefined {
    return this.keys.find((k) => k.id === id);
  }

  /** Replaces the keys; the first is current. */
  set(keys: readonly DataKey[]): void {
    const seen = new Set<string>();
    for (const k of keys) {
      if (!KEY_ID_RE.test(k.id))
        throw new RunfleetError('InvalidConfig', `invalid data key id ${JSON.stringify(k.id)}`);
      if (k.key.length !== KEY_BYTES)
        throw new RunfleetError('InvalidConfig', `data key ${k.id} must be ${KEY_BYTES} bytes, not ${k.key.length}`);
      if (seen.has(k.id)) throw new RunfleetError('InvalidConfig', `data key ${k.id} appears twice`);
      seen.add(k.id);
    }
    this.keys = keys.map((k) => ({ id: k.id, key: Buffer.from(k.key) }));
  }

  ids(): string[] {
    return this.keys.map((k) => k.id);
  }

  get size(): number {
    return this.keys.length;
  }
}

/** A new random key with a readable, sortable id (`k-20250131-1a2b3c4d`). */
export function newDataKey(now = new Date()): DataKey {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  return { id: `k-${day}-${randomBytes(4).toString('hex')}`, key: randomBytes(KEY_BYTES) };
}

const KeyFileSchema = z.strictObject({
  version: z.literal(1),
  keys: z
    .array(
      z.strictObject({
        id: z.string().regex(KEY_ID_RE, 'must be letters, digits, "_", "." or "-"'),
        key: z.base64('must be base64'),
        createdAt: z.string().optional(),
      }),
    )
    .min(1, 'must hold at least one key'),
});

/** Reads a key file; `InvalidConfig` naming the file when it is unreadable or malformed. */
export function readKeyFile(file: string): DataKey[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RunfleetError('InvalidConfig', `cannot read data key file ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new RunfleetError('InvalidConfig', `data key file ${file} is not JSON: ${(err as Error).message}`);
  }
  const parsed = KeyFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : '(file)';
    throw new RunfleetError('InvalidConfig', `data key file ${file}: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  const keys = parsed.data.keys.map((k) => ({ id: k.id, key: Buffer.from(k.key, 'base64') }));
  // Validates lengths and duplicate ids with the same messages as any other ring.
  new KeyRing(keys);
  return keys;
}

export interface KeyFileResult {
  file: string;
  /** The new current key's id. */
  id: string;
  /** Every key id in the file, current first. */
  ids: string[];
}

/**
 * Creates the key file with one new key (refuses to overwrite), or with `rotate` puts a new
 * current key in front of the existing ones, which stay for decoding older payloads.
 */
export function createKeyFile(file: string, opts: { rotate?: boolean; now?: Date } = {}): KeyFileResult {
  const exists = existsSync(file);
  if (exists && !opts.rotate)
    throw new RunfleetError(
      'AlreadyExists',
      `data key file ${file} exists; use --rotate to add a new current key (the old ones stay for decoding)`,
    );
  if (!exists && opts.rotate) throw new RunfleetError('NotFound', `no data key file ${file} to rotate`);
  const old = exists ? readKeyFile(file) : [];
  const key = newDataKey(opts.now);
  const keys = [key, ...old];
  const createdAt = (opts.now ?? new Date()).toISOString();
  const body = {
    version: 1,
    keys: keys.map((k) => ({
      id: k.id,
      key: k.key.toString('base64'),
      ...(k === key ? { createdAt } : {}),
    })),
  };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // Written beside the file with mode 0600 and renamed over it: never a half-written or readable key file.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return { file, id: key.id, ids: keys.map((k) => k.id) };
}

/** The ring of the configured key file, or an empty ring when there is no file. */
export function loadKeyRing(config: Pick<Config, 'encryption'>): KeyRing {
  const file = config.encryption.keyFile;
  return new KeyRing(existsSync(file) ? readKeyFile(file) : []);
}

/** The one-line warning of processes that start workers without data keys. */
export function noKeysWarning(config: Pick<Config, 'encryption'>): string {
  return `payloads are not encrypted: no data keys at ${config.encryption.keyFile}; run \`runfleet keys create\``;
}
