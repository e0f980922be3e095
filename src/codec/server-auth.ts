/**
 * Who may use the codec server: the holder of a shared bearer token, or a Web UI user whose OIDC
 * access token the UI forwards (`passAccessToken`: `Authorization: Bearer <JWT>`), verified
 * against the identity provider's public keys (a JWKS file), issuer and audience.
 *
 * Accepted JWTs: compact JWS signed RS256 or ES256 (P-256) by a key of the JWKS (by `kid`; a JWKS
 * of one key needs none), with `iss` equal to the issuer, `aud` equal to or containing the
 * audience, an `exp` in the future and no `nbf` in the future (60 s of clock skew either way).
 * Every other algorithm (`none`, HS256, ...) is refused, so a public key can never be used as an
 * HMAC secret. Scopes and groups are not looked at: any user the provider issues such a token to
 * may decode.
 */
import { createHash, createPublicKey, timingSafeEqual, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { RunfleetError } from '../errors';

/** Shorter shared tokens are guessable; `openssl rand -hex 32` gives 64 characters. */
export const MIN_TOKEN_LENGTH = 16;
/** Clocks of the identity provider and this host differ by a little. */
const CLOCK_SKEW_SECONDS = 60;

export interface JwtOptions {
  /** The identity provider's public keys (its JWKS document's `keys`). */
  keys: JsonWebKey[];
  /** The `iss` a token must carry. */
  issuer: string;
  /** The `aud` a token must carry (or contain). */
  audience: string;
}

export interface CodecAuthOptions {
  /** Shared bearer tokens (any one is accepted). */
  tokens?: string[];
  /** Web UI access tokens (`passAccessToken`). */
  jwt?: JwtOptions;
}

export type AuthResult = { ok: true; who: string } | { ok: false; why: string };

/** Checks an `Authorization` header; `now` is in milliseconds. */
export type Authenticator = (authorization: string | undefined, now?: number) => AuthResult;

export function createAuthenticator(opts: CodecAuthOptions): Authenticator {
  const digests = (opts.tokens ?? []).map(sha256);
  const jwt = opts.jwt ? jwtVerifier(opts.jwt) : null;
  return (authorization, now = Date.now()) => {
    const match = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
    if (!match) return { ok: false, why: 'no bearer token: send Authorization: Bearer <token>' };
    const token = match[1] as string;
    // Every token is compared, in constant time: neither the time nor the answer says which was close.
    const given = sha256(token);
    let known = false;
    for (const d of digests) known = timingSafeEqual(given, d) || known;
    if (known) return { ok: true, who: 'token' };
    if (jwt && token.split('.').length === 3) return jwt(token, now);
    return { ok: false, why: 'the bearer token is not accepted' };
  };
}

/** Reads a token file: one token per non-empty line (several let a new token roll out). */
export function readTokenFile(file: string, what: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RunfleetError('InvalidConfig', `${what}: cannot read ${file}: ${(err as Error).message}`);
  }
  return checkTokens(
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
    `${what} ${file}`,
  );
}

export function checkTokens(tokens: string[], what: string): string[] {
  if (tokens.length === 0) throw new RunfleetError('InvalidConfig', `${what}: no token in it`);
  for (const t of tokens) {
    if (t.length < MIN_TOKEN_LENGTH || /\s/.test(t))
      throw new RunfleetError(
        'InvalidConfig',
        `${what}: a token must be at least ${MIN_TOKEN_LENGTH} characters without spaces (openssl rand -hex 32)`,
      );
  }
  return tokens;
}

/** Reads a JWKS document (`{"keys": [...]}`), as an identity provider publishes it. */
export function readJwksFile(file: string): JsonWebKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new RunfleetError('InvalidConfig', `--jwks ${file}: ${(err as Error).message}`);
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0)
    throw new RunfleetError('InvalidConfig', `--jwks ${file}: not a JWKS document ({"keys": [...]}) with a key`);
  return keys as JsonWebKey[];
}

interface VerifyKey {
  kid: string | undefined;
  alg: 'RS256' | 'ES256';
  key: KeyObject;
}

function jwtVerifier(opts: JwtOptions): (token: string, now: number) => AuthResult {
  const keys: VerifyKey[] = [];
  for (const jwk of opts.keys) {
    // Signing keys only: an encryption key (`use: enc`) or another curve is not for tokens.
    if (jwk['use'] === 'enc') continue;
    const alg = jwk.kty === 'RSA' ? 'RS256' : jwk.kty === 'EC' && jwk.crv === 'P-256' ? 'ES256' : null;
    if (!alg || (jwk['alg'] !== undefined && jwk['alg'] !== alg)) continue;
    try {
      keys.push({ kid: jwk.kid as string | undefined, alg, key: createPublicKey({ key: jwk, format: 'jwk' }) });
    } catch (err) {
      throw new RunfleetError(
        'InvalidConfig',
        `--jwks: key ${String(jwk.kid)} is not usable: ${(err as Error).message}`,
      );
    }
  }
  if (keys.length === 0) throw new RunfleetError('InvalidConfig', '--jwks: no RS256 or ES256 signing key in it');

  return (token, now) => {
    const [h, p, s] = token.split('.') as [string, string, string];
    const header = decodeJson(h) as { alg?: unknown; kid?: unknown } | null;
    const claims = decodeJson(p) as Record<string, unknown> | null;
    if (!header || !claims) return { ok: false, why: 'the access token is not a JWT' };
    if (header.alg !== 'RS256' && header.alg !== 'ES256')
      return { ok: false, why: `the access token's algorithm ${String(header.alg)} is not accepted (RS256, ES256)` };
    const candidates = keys.filter(
      (k) => k.alg === header.alg && (header.kid === undefined ? keys.length === 1 : k.kid === header.kid),
    );
    const signature = Buffer.from(s, 'base64url');
    const signed = Buffer.from(`${h}.${p}`);
    const valid = candidates.some((k) =>
      verify('sha256', signed, k.alg === 'ES256' ? { key: k.key, dsaEncoding: 'ieee-p1363' } : k.key, signature),
    );
    if (!valid) return { ok: false, why: 'the access token is not signed by a key of the JWKS' };
    const seconds = now / 1000;
    if (claims['iss'] !== opts.issuer) return { ok: false, why: `the access token's issuer is not ${opts.issuer}` };
    const aud = claims['aud'];
    if (!(aud === opts.audience || (Array.isArray(aud) && aud.includes(opts.audience))))
      return { ok: false, why: `the access token is not for audience ${opts.audience}` };
    if (typeof claims['exp'] !== 'number' || claims['exp'] + CLOCK_SKEW_SECONDS < seconds)
      return { ok: false, why: 'the access token has expired' };
    if (typeof claims['nbf'] === 'number' && claims['nbf'] - CLOCK_SKEW_SECONDS > seconds)
      return { ok: false, why: 'the access token is not valid yet' };
    const sub = typeof claims['sub'] === 'string' ? claims['sub'] : '?';
    return { ok: true, who: `access token of ${sub}` };
  };
}

function decodeJson(part: string): unknown {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
