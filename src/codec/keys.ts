/**
 * Data keys: named 256-bit AES keys, the first one current. Clients and the control worker read
 * them from the key file (`runfleet keys create`); a runner receives them sealed when it
 * registers, so its ring starts empty and is filled later (`set`).
 *
 * Keys are scoped (docs/security.md, "Data keys"): a payload sent to a pool's queues is encrypted
 * with that pool's key, one sent to a runner's queues with that runner's own key, everything else
 * with a control key. A runner receives only the keys of its own scopes. A scope's key is derived
 * from a control key (HKDF, id `<control key id>+<scope>`) unless the key file holds keys of
 * that scope (`runfleet keys create --rotate --scope S`, and a purge re-keys the runner's scopes).
 *
 * The key file is JSON, mode 0600:
 * `{ "version": 1, "keys": [{ "id": "k-...", "key": "<base64 of 32 bytes>", "createdAt": "..." }],
 *    "scoped": [{ "id": "k-...+pool/linux", "key": "...", "createdAt": "..." }] }`.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import type { Config } from '../config';
import { RunfleetError } from '../errors';

/** AES-256: keys are exactly this many bytes. */
export const KEY_BYTES = 32;
/** How often a ring that follows its key file looks at it: a re-key is in force within seconds. */
const KEY_FILE_CHECK_MS = 2_000;
/** A runner asks the fleet for keys it lacks at most this often (a payload for another runner must not flood it). */
const MISSING_KEY_RETRY_MS = 10_000;
const BASE_ID = '[A-Za-z0-9][A-Za-z0-9_.-]{0,62}';
const BASE_ID_RE = new RegExp(`^${BASE_ID}$`);
/** `pool/<name>` or `runner/<name>`: names as the spec and registry allow them. */
const SCOPE = '(?:pool|runner)/[A-Za-z0-9][A-Za-z0-9_.-]{0,62}';
const SCOPE_RE = new RegExp(`^${SCOPE}$`);
const KEY_ID_RE = new RegExp(`^${BASE_ID}(?:\\+${SCOPE})?$`);

export interface DataKey {
  id: string;
  key: Buffer;
}

/** The id of a scoped key: `<base id>+<scope>`. */
export function scopedKeyId(baseId: string, scope: string): string {
  return `${baseId}+${scope}`;
}

/** The scope of a key id, or null for a control key. */
export function scopeOfKeyId(id: string): string | null {
  const plus = id.indexOf('+');
  return plus < 0 ? null : id.slice(plus + 1);
}

export function isKeyScope(scope: string): boolean {
  return SCOPE_RE.test(scope);
}

/** A scope's key derived from a control key: HKDF-SHA256, the scope as info. */
export function deriveScopedKey(base: DataKey, scope: string): DataKey {
  const key = Buffer.from(
    hkdfSync('sha256', base.key, Buffer.from('runfleet-key-scope'), Buffer.from(scope), KEY_BYTES),
  );
  return { id: scopedKeyId(base.id, scope), key };
}

/**
 * The data keys of a process. Mutable: a runner receives its keys after it registers.
 *
 * Control keys (ids without `+`) encrypt what only control workers and clients read; scoped keys
 * (`<id>+<scope>`) are either held explicitly (a rotated scope, or a runner's sealed keys) or
 * derived on demand from a control key.
 */
export class KeyRing {
  /** Every key held, in the order given (current first). */
  private keys: DataKey[] = [];
  private derived = new Map<string, DataKey>();
  private source: { file: string; mtimeMs: number; checkedAt: number } | null = null;
  private refresher: (() => Promise<void>) | null = null;
  private refreshing: Promise<void> | null = null;
  private lastRefreshAt = 0;

  constructor(keys: readonly DataKey[] = []) {
    this.set(keys);
  }

  /**
   * The key new unscoped payloads are encrypted with: the current control key, or for a runner
   * (which holds scoped keys only) its first key; null when there is none (payloads in clear).
   */
  current(): DataKey | null {
    this.refresh();
    return this.keys.find((k) => scopeOfKeyId(k.id) === null) ?? this.keys[0] ?? null;
  }

  /**
   * The key for payloads of one scope: the scope's newest explicit key, else one derived from the
   * current control key. A runner that holds no key of that scope encrypts with its first key.
   */
  currentFor(scope: string): DataKey | null {
    this.refresh();
    const explicit = this.keys.find((k) => scopeOfKeyId(k.id) === scope);
    if (explicit) return explicit;
    const base = this.keys.find((k) => scopeOfKeyId(k.id) === null);
    if (base) return this.deriveCached(base, scope);
    return this.current();
  }

  get(id: string): DataKey | undefined {
    this.refresh();
    const held = this.keys.find((k) => k.id === id);
    if (held) return held;
    const scope = scopeOfKeyId(id);
    if (scope === null || !SCOPE_RE.test(scope)) return undefined;
    const base = this.keys.find((k) => k.id === id.slice(0, id.indexOf('+')));
    return base ? this.deriveCached(base, scope) : undefined;
  }

  /**
   * The keys a runner of these scopes receives, sealed, when it registers: for each scope its
   * explicit keys and one derived from every control key (older payloads stay readable), the
   * first scope's current key first (the runner's own key: what it encrypts with).
   */
  keysFor(scopes: readonly string[]): DataKey[] {
    this.refresh();
    const out: DataKey[] = [];
    for (const scope of scopes) {
      if (!SCOPE_RE.test(scope)) throw new RunfleetError('InvalidConfig', `invalid key scope ${JSON.stringify(scope)}`);
      const first = this.currentFor(scope);
      if (first) out.push(first);
      for (const k of this.keys) {
        const s = scopeOfKeyId(k.id);
        const key = s === scope ? k : s === null ? this.deriveCached(k, scope) : null;
        if (key && !out.some((o) => o.id === key.id)) out.push(key);
      }
    }
    return out;
  }

  /** Replaces the keys; the first of each kind is current. */
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
    this.derived.clear();
  }

  ids(): string[] {
    return this.keys.map((k) => k.id);
  }

  get size(): number {
    return this.keys.length;
  }

  /**
   * Keeps the ring in step with its key file: re-read when the file changed, checked at most
   * every KEY_FILE_CHECK_MS. A re-key (`keys create --rotate [--scope]`, a purge) reaches a
   * running control worker so, without a restart. A file that became unreadable keeps the keys.
   */
  follow(file: string): this {
    this.source = { file, mtimeMs: existsSync(file) ? statSync(file).mtimeMs : 0, checkedAt: Date.now() };
    return this;
  }

  /**
   * How a runner gets keys it lacks: asks the fleet again (a re-key or a rotated control key
   * since it registered). The codec calls `fetchMissing` before it gives up on a payload.
   */
  setRefresher(refresher: (() => Promise<void>) | null): void {
    this.refresher = refresher;
  }

  /**
   * Asks the refresher once for keys the ring lacks (one call at a time, at most every
   * MISSING_KEY_RETRY_MS), then returns the key if it came.
   */
  async fetchMissing(id: string): Promise<DataKey | undefined> {
    if (!this.refresher) return undefined;
    if (!this.refreshing && Date.now() - this.lastRefreshAt >= MISSING_KEY_RETRY_MS) {
      this.lastRefreshAt = Date.now();
      this.refreshing = this.refresher()
        .catch(() => undefined)
        .finally(() => {
          this.refreshing = null;
        });
    }
    await this.refreshing;
    return this.get(id);
  }

  private refresh(): void {
    const src = this.source;
    if (!src || Date.now() - src.checkedAt < KEY_FILE_CHECK_MS) return;
    src.checkedAt = Date.now();
    try {
      const mtimeMs = statSync(src.file).mtimeMs;
      if (mtimeMs === src.mtimeMs) return;
      this.set(readKeyFile(src.file));
      src.mtimeMs = mtimeMs;
    } catch {
      // Mid-write or removed: the keys held stay until a readable file is back.
    }
  }

  private deriveCached(base: DataKey, scope: string): DataKey {
    const id = scopedKeyId(base.id, scope);
    let key = this.derived.get(id);
    if (!key) {
      key = deriveScopedKey(base, scope);
      this.derived.set(id, key);
    }
    return key;
  }
}

/** A new random key with a readable, sortable id (`k-20250131-1a2b3c4d`). */
export function newDataKey(now = new Date()): DataKey {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  return { id: `k-${day}-${randomBytes(4).toString('hex')}`, key: randomBytes(KEY_BYTES) };
}

const KeyEntrySchema = z.strictObject({
  id: z.string(),
  key: z.base64('must be base64'),
  createdAt: z.string().optional(),
});
const KeyFileSchema = z.strictObject({
  version: z.literal(1),
  keys: z
    .array(KeyEntrySchema.extend({ id: z.string().regex(BASE_ID_RE, 'must be letters, digits, "_", "." or "-"') }))
    .min(1, 'must hold at least one key'),
  /** Keys of one scope each (`<id>+pool/<name>`, `<id>+runner/<name>`), newest of a scope first. */
  scoped: z
    .array(
      KeyEntrySchema.extend({
        id: z
          .string()
          .regex(KEY_ID_RE, 'must be <key id>+pool/<name> or <key id>+runner/<name>')
          .refine((id) => scopeOfKeyId(id) !== null, 'must be <key id>+pool/<name> or <key id>+runner/<name>'),
      }),
    )
    .optional(),
});
type KeyFile = z.infer<typeof KeyFileSchema>;

function parseKeyFile(file: string): KeyFile {
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
  return parsed.data;
}

/**
 * Reads a key file: its control keys, then its scoped keys; `InvalidConfig` naming the file when
 * it is unreadable or malformed.
 */
export function readKeyFile(file: string): DataKey[] {
  const body = parseKeyFile(file);
  const keys = [...body.keys, ...(body.scoped ?? [])].map((k) => ({ id: k.id, key: Buffer.from(k.key, 'base64') }));
  // Validates lengths and duplicate ids with the same messages as any other ring.
  new KeyRing(keys);
  return keys;
}

export interface KeyFileResult {
  file: string;
  /** The new current key's id. */
  id: string;
  /** Every key id in the file, current first (control keys, then scoped keys). */
  ids: string[];
}

/**
 * Creates the key file with one new key (refuses to overwrite), or with `rotate` puts a new
 * current key in front of the existing ones, which stay for decoding older payloads. With
 * `scope` (and `rotate`), the new key is that scope's alone (`<id>+<scope>`): a pool or runner
 * re-keyed, for example after a purge; its runners receive it when they next connect.
 */
export function createKeyFile(
  file: string,
  opts: { rotate?: boolean; scope?: string; now?: Date } = {},
): KeyFileResult {
  const exists = existsSync(file);
  if (exists && !opts.rotate)
    throw new RunfleetError(
      'AlreadyExists',
      `data key file ${file} exists; use --rotate to add a new current key (the old ones stay for decoding)`,
    );
  if (!exists && opts.rotate) throw new RunfleetError('NotFound', `no data key file ${file} to rotate`);
  if (opts.scope !== undefined && !isKeyScope(opts.scope))
    throw new RunfleetError(
      'InvalidArgument',
      `invalid key scope ${JSON.stringify(opts.scope)}: pool/<name> or runner/<name>`,
    );
  if (opts.scope !== undefined && !exists)
    throw new RunfleetError('NotFound', `no data key file ${file}: create it before re-keying a scope`);
  const old: KeyFile = exists ? parseKeyFile(file) : { version: 1, keys: [] };
  const fresh = newDataKey(opts.now);
  const createdAt = (opts.now ?? new Date()).toISOString();
  const entry = {
    id: opts.scope ? scopedKeyId(fresh.id, opts.scope) : fresh.id,
    key: fresh.key.toString('base64'),
    createdAt,
  };
  const body: KeyFile = opts.scope
    ? { ...old, scoped: [entry, ...(old.scoped ?? [])] }
    : { ...old, keys: [entry, ...old.keys] };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // Written beside the file with mode 0600 and renamed over it: never a half-written or readable key file.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return { file, id: entry.id, ids: [...body.keys, ...(body.scoped ?? [])].map((k) => k.id) };
}

/** The ring of the configured key file (followed: see `KeyRing.follow`), or an empty ring when there is no file. */
export function loadKeyRing(config: { encryption: Pick<Config['encryption'], 'keyFile'> }): KeyRing {
  const file = config.encryption.keyFile;
  try {
    statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new KeyRing([]);
    // A file there but out of reach (a directory this user cannot enter) is not "no keys".
    throw new RunfleetError(
      'InvalidConfig',
      `cannot read the data key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  return new KeyRing(readKeyFile(file)).follow(file);
}

/** The one-line warning of processes that start workers without data keys. */
export function noKeysWarning(config: Pick<Config, 'encryption'>): string {
  return `payloads are not encrypted: no data keys at ${config.encryption.keyFile}; run \`runfleet keys create\``;
}
