/**
 * Registration tokens in clear: derived from the fleet worker's secret and the token's id, so the
 * fleet workflow (and its history) holds only ids and hashes. Only the fleet worker, which
 * writes tokens into instance user data, and whoever holds the secret can produce one.
 *
 * The fleet's rotating token is never given out. Each instance gets a token of its own, derived
 * from the fleet token, its launch and its slot in the launch, and its registry runner
 * (`runner/<instance id>`) accepts that one only: a token read off one instance's user data
 * registers no other instance's runner.
 * Node-only: the registry workflow hashes with `tokenSha256` (src/registry/state.ts) instead.
 */
import { createHash, createHmac } from 'node:crypto';

export function deriveToken(secret: string, fleet: string, tokenId: string): string {
  const mac = createHmac('sha256', secret).update(`runfleet-registration\0${fleet}\0${tokenId}`).digest('base64url');
  return `rfr_${tokenId}_${mac}`;
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export interface InstanceToken {
  /** 32 hex digits: the registry's token ids. */
  id: string;
  /** The token in clear: goes into one instance's user data, nowhere else. */
  token: string;
  /** sha256 hex of `token`: what the instance's registry runner holds. */
  hash: string;
}

/**
 * The token of the instance launched in `slot` of launch `launch` (its client token) with fleet
 * token `tokenId`. Deterministic, so a retried launch derives the same tokens; distinct for every
 * (fleet token, launch, slot), so no two instances share one.
 */
export function instanceToken(
  secret: string,
  fleet: string,
  tokenId: string,
  launch: string,
  slot: number,
): InstanceToken {
  const id = createHash('sha256')
    .update(`runfleet-instance-token\0${fleet}\0${tokenId}\0${launch}\0${slot}`, 'utf8')
    .digest('hex')
    .slice(0, 32);
  const token = deriveToken(secret, fleet, id);
  return { id, token, hash: tokenHash(token) };
}
