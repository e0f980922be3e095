/**
 * A runner signs what it tells runs (src/security/runner-proof.ts) with its identity signing key,
 * here with node:crypto: the key object is made once, each signature is one `sign()` call.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { RunfleetError } from '../errors';
import { signingKeyFromSeed } from './operator';
import { runnerStatementBytes, type RunnerMessage } from './runner-proof';

/** The DER prefix of an Ed25519 PKCS#8 private key; the 32-byte seed follows. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface RunnerSigner {
  /** base64 of the Ed25519 signature over the message's statement. */
  sign(message: RunnerMessage): string;
  /** base64 of the raw public key (as the runner's registry record has it): what `said.signer` names. */
  readonly publicKey: string;
}

/** A signer from the base64 32-byte seed of the runner's signing key. */
export function createRunnerSigner(seed: string): RunnerSigner {
  const raw = Buffer.from(seed, 'base64');
  if (raw.length !== 32)
    throw new RunfleetError('InvalidConfig', 'a runner signing key is a 32-byte Ed25519 seed (base64)');
  const key: KeyObject = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  return {
    sign: (message) => sign(null, runnerStatementBytes(message), key).toString('base64'),
    publicKey: signingKeyFromSeed(seed).publicKey,
  };
}
