/**
 * Registration tokens of the runner registry, on the client side: `rfr_<id>_<secret>`. The id
 * names the token in the record; only the sha256 of the whole token travels to the registry
 * workflow (and its history), so the token is shown once, by `runner create` / `runner token`.
 * Node-only: the workflow checks tokens with the sandbox-safe `sha256Hex` (src/fleet/sha256.ts).
 */
import { createHash, randomBytes } from 'node:crypto';

export interface NewToken {
  /** The token in clear: shown once, never stored. */
  token: string;
  id: string;
  /** sha256 hex of `token`. */
  hash: string;
}

export function createRegistrationToken(): NewToken {
  const id = randomBytes(6).toString('hex');
  // 32 random bytes: guessing one is out of the question, and a token is short-lived anyway.
  const secret = randomBytes(32).toString('base64url');
  const token = `rfr_${id}_${secret}`;
  return { token, id, hash: tokenHash(token) };
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
