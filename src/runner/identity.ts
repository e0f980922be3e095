/**
 * A runner's identity, made on its first start and kept in its state directory (mode 0600):
 * a UUID, an X25519 key pair and an Ed25519 signing key pair. The fleet seals the data keys for
 * the X25519 public key; the runner signs what it tells runs with the signing key, whose public
 * half the registry records (`identity.signingKey`). Private keys never leave the file. Once
 * registered, the runner connects with its id and no token. A file from before signing keys gets
 * one on its next load.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { generateIdentity } from '../codec/seal';
import { RunfleetError } from '../errors';
import { generateSigningKey } from '../security/operator';

const IdentitySchema = z.strictObject({
  runnerId: z.string().uuid(),
  publicKey: z.string().min(1),
  privateKey: z.string().min(1),
  /** base64 of the raw 32-byte Ed25519 public key; absent in files made before signing keys. */
  signingKey: z.string().min(1).optional(),
  /** base64 of the 32-byte Ed25519 seed. */
  signingSeed: z.string().min(1).optional(),
  createdAt: z.string(),
  /** Set once the fleet accepted the registration. */
  registered: z.strictObject({ name: z.string(), at: z.string() }).nullable(),
});
export type RunnerIdentity = z.infer<typeof IdentitySchema> & { signingKey: string; signingSeed: string };

export function identityFile(stateDir: string): string {
  return join(stateDir, 'identity.json');
}

export function loadOrCreateIdentity(stateDir: string): RunnerIdentity {
  const file = identityFile(stateDir);
  if (existsSync(file)) {
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new RunfleetError('InvalidConfig', `runner identity ${file} is unreadable: ${(err as Error).message}`);
    }
    const parsed = IdentitySchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new RunfleetError(
        'InvalidConfig',
        `runner identity ${file} is damaged (${issue?.path.join('.') || 'file'}: ${issue?.message}); remove it and register again`,
      );
    }
    const { signingKey, signingSeed } = parsed.data;
    if (signingKey && signingSeed) return { ...parsed.data, signingKey, signingSeed };
    // Made before signing keys: the upgrade adds one in place.
    const signing = generateSigningKey();
    const upgraded = { ...parsed.data, signingKey: signing.publicKey, signingSeed: signing.seed };
    saveIdentity(stateDir, upgraded);
    return upgraded;
  }
  const keys = generateIdentity();
  const signing = generateSigningKey();
  const identity: RunnerIdentity = {
    runnerId: randomUUID(),
    publicKey: keys.publicKey,
    privateKey: keys.privateKey,
    signingKey: signing.publicKey,
    signingSeed: signing.seed,
    createdAt: new Date().toISOString(),
    registered: null,
  };
  saveIdentity(stateDir, identity);
  return identity;
}

export function saveIdentity(stateDir: string, identity: RunnerIdentity): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = identityFile(stateDir);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(identity, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
