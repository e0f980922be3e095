/**
 * Registration tokens of the runner registry, on the client side: `rfr_<id>_<seed>`, where the
 * seed is an Ed25519 private key (src/security/operator.ts). The registry holds only the token's
 * public key, in a grant the operator key signs; a runner proves it holds the token by signing its
 * identity with it, so the token is shown once (by `runner create` / `runner token`) and never
 * travels. Node-only: the workflow verifies proofs with @noble/curves.
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseToken, signStatement, tokenOf, type NewToken } from '../security/operator';
import { GRANT_KIND, PROOF_KIND, type RegistrationProof, type TokenGrant } from '../security/statements';
import type { RegisterRequest } from './types';

export type { NewToken };

export function createRegistrationToken(): NewToken {
  // 32 random bytes of seed: guessing one is out of the question, and a token is short-lived anyway.
  return tokenOf(randomBytes(6).toString('hex'), randomBytes(32));
}

/** The grant the operator signs for a token: what the registry records, and until when. */
export function tokenGrant(
  runner: { name: string; pool: string; labels: Record<string, string>; temporary: boolean; slots: number },
  token: { id: string; publicKey: string },
  issuedAt: string,
  expiresAt: string,
): TokenGrant {
  return {
    kind: GRANT_KIND,
    runner: runner.name,
    pool: runner.pool,
    labels: { ...runner.labels },
    temporary: runner.temporary,
    slots: runner.slots,
    tokenId: token.id,
    tokenKey: token.publicKey,
    issuedAt,
    expiresAt,
  };
}

/** What a runner sends to register: its identity and the token key's proof over it (never the token). */
export function registrationProof(
  token: string,
  runner: { name: string; runnerId: string; publicKey: string; signingKey: string },
  at: Date = new Date(),
): Pick<RegisterRequest, 'proof' | 'proofSignature' | 'signingKey'> {
  const { id, key } = parseToken(token);
  const proof: RegistrationProof = {
    kind: PROOF_KIND,
    runner: runner.name,
    tokenId: id,
    runnerId: runner.runnerId,
    publicKey: runner.publicKey,
    signingKey: runner.signingKey,
    at: at.toISOString(),
  };
  return { proof, proofSignature: signStatement(key.seed, proof), signingKey: runner.signingKey };
}

/** sha256 hex of a token: how tokens were held before grants (old histories, tests of them). */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
