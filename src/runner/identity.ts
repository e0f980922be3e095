/**
 * A runner's identity, made on its first start and kept in its state directory (mode 0600):
 * a UUID and an X25519 key pair. The fleet seals the data keys for the public key; the private
 * key never leaves the file. Once registered, the runner connects with its id and no token.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { generateIdentity } from '../codec/seal';
import { RunfleetError } from '../errors';

const IdentitySchema = z.strictObject({
  runnerId: z.string().uuid(),
  publicKey: z.string().min(1),
  privateKey: z.string().min(1),
  createdAt: z.string(),
  /** Set once the fleet accepted the registration. */
  registered: z.strictObject({ name: z.string(), at: z.string() }).nullable(),
});
export type RunnerIdentity = z.infer<typeof IdentitySchema>;

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
    return parsed.data;
  }
  const keys = generateIdentity();
  const identity: RunnerIdentity = {
    runnerId: randomUUID(),
    publicKey: keys.publicKey,
    privateKey: keys.privateKey,
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
