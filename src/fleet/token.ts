/**
 * Registration tokens in clear: derived from the fleet worker's secret and the token's id, so the
 * fleet workflow (and its history) holds only the id and a hash. Only the fleet worker, which
 * writes tokens into instance user data, and whoever holds the secret can produce one.
 * Node-only: workflows compare hashes with `sha256Hex` instead.
 */
import { createHash, createHmac } from 'node:crypto';

export function deriveToken(secret: string, fleet: string, tokenId: string): string {
  const mac = createHmac('sha256', secret).update(`runfleet-registration\0${fleet}\0${tokenId}`).digest('base64url');
  return `rfr_${tokenId}_${mac}`;
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
