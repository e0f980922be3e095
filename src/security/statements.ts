/**
 * Signed statements of admission, their canonical bytes and their Ed25519 verification with
 * @noble/curves: pure and sandbox-safe, so the runner workflow checks a registration proof in its
 * update validator and the control worker checks the same bytes (src/security/operator.ts signs
 * and verifies with node:crypto; both agree, unit-tested).
 *
 * Glossary
 * - Operator key: an Ed25519 key pair. Its private half signs grants and commands (the CLI);
 *   its public half configures the control workers, which alone decide who gets data keys.
 * - Token key: the Ed25519 key pair a registration token `rfr_<id>_<seed>` holds. The registry
 *   keeps only its public half (`tokenKey`).
 * - Grant (`runfleet/token-grant`): the operator admits one token key for one runner name, pool,
 *   labels and time window. Signed by the operator key.
 * - Proof (`runfleet/registration`): the token key binds the runner's identity (runner id, X25519
 *   sealing key, Ed25519 signing key) to the runner name at a time. Signed by the token key; the
 *   token itself never leaves the runner host.
 * - Command (`runfleet/operator-command`): purge, configure, enable, disable of one runner, with
 *   its arguments, a time and a nonce. Signed by the operator key.
 *
 * Keys and signatures are base64 of their raw bytes (32-byte public keys, 64-byte signatures).
 */
import { ed25519 } from '@noble/curves/ed25519';

/** Longest life of a registration token: a token is a key to the fleet's data keys. */
export const MAX_TOKEN_TTL_MS = 7 * 86_400_000;
/**
 * How far apart two clocks (the signer's, the workflow's, the control worker's) may be: a signed
 * command older than this is refused, so a command seen in history cannot be replayed later.
 */
export const CLOCK_SKEW_MS = 5 * 60_000;

export const GRANT_KIND = 'runfleet/token-grant';
export const PROOF_KIND = 'runfleet/registration';
export const COMMAND_KIND = 'runfleet/operator-command';
export const APPROVAL_KIND = 'runfleet/approval';

/** What the operator admits: one token key for one runner, as the registry must record it. */
export interface TokenGrant {
  kind: typeof GRANT_KIND;
  runner: string;
  pool: string;
  labels: Record<string, string>;
  temporary: boolean;
  slots: number;
  tokenId: string;
  /** base64 of the token's raw Ed25519 public key. */
  tokenKey: string;
  issuedAt: string;
  expiresAt: string;
}

/** What a runner proves with its token: this identity registers as this runner, now. */
export interface RegistrationProof {
  kind: typeof PROOF_KIND;
  runner: string;
  tokenId: string;
  runnerId: string;
  /** base64 of the runner's X25519 public key (SPKI DER): the data keys are sealed for it. */
  publicKey: string;
  /** base64 of the runner's raw Ed25519 identity public key: it signs what the runner says. */
  signingKey: string;
  at: string;
}

export const OPERATOR_ACTIONS = ['purge', 'configure', 'enable', 'disable'] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

/** One operator command to one runner. `args` is the update's argument without its signature. */
export interface OperatorCommand {
  kind: typeof COMMAND_KIND;
  runner: string;
  action: OperatorAction;
  args: unknown;
  at: string;
  /** Random hex: the registry refuses a nonce it has seen within the clock-skew window. */
  nonce: string;
}

/** The signature an operator command carries (with the update's own argument, it rebuilds the statement). */
export interface OperatorSignature {
  at: string;
  nonce: string;
  /** base64 Ed25519 signature over `statementBytes(command)`. */
  signature: string;
}

/**
 * An approval of one gated task of one run (`run approve`), signed by the operator key: a client
 * with namespace access alone cannot approve, and `by` is what the signer said, not a claim.
 */
export interface ApprovalStatement {
  kind: typeof APPROVAL_KIND;
  /** The run's workflow id. */
  run: string;
  task: string;
  by: string;
  at: string;
  nonce: string;
}

export type Statement = TokenGrant | RegistrationProof | OperatorCommand | ApprovalStatement;

/** The approval an `approveTask` update stands for (its signature is made over this). */
export function approvalStatement(
  run: string,
  task: string,
  by: string,
  sig: { at: string; nonce: string },
): ApprovalStatement {
  return { kind: APPROVAL_KIND, run, task, by, at: sig.at, nonce: sig.nonce };
}

/**
 * JSON with object keys sorted at every level and `undefined` members left out: the same value
 * gives the same bytes on every side, whatever order its keys were built in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('canonicalJson: not a finite number');
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** The bytes a statement is signed as: UTF-8 of its canonical JSON (its `kind` separates the domains). */
export function statementBytes(statement: Statement): Uint8Array {
  return new TextEncoder().encode(canonicalJson(statement));
}

/** The operator command an update's argument and signature stand for. */
export function operatorCommand(
  runner: string,
  action: OperatorAction,
  args: unknown,
  sig: OperatorSignature,
): OperatorCommand {
  return { kind: COMMAND_KIND, runner, action, args: withoutSignature(args), at: sig.at, nonce: sig.nonce };
}

/** An update argument as it is signed: without its `operator` member. */
export function withoutSignature(args: unknown): unknown {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return args ?? {};
  const { operator: _operator, ...rest } = args as Record<string, unknown>;
  return rest;
}

/**
 * Ed25519 verification in plain JavaScript (sandbox-safe, deterministic). False for anything
 * malformed: a bad key, a bad signature, a statement that is not JSON.
 */
export function verifyStatement(publicKeyB64: string, statement: Statement, signatureB64: string): boolean {
  try {
    const key = fromBase64(publicKeyB64);
    const sig = fromBase64(signatureB64);
    if (key?.length !== 32 || sig?.length !== 64) return false;
    return ed25519.verify(sig, statementBytes(statement), key);
  } catch {
    return false;
  }
}

/** A problem with a grant's own fields (not its signature), or null. Times are checked against `nowMs` when given. */
export function grantProblem(grant: unknown, nowMs?: number): string | null {
  const g = grant as Partial<TokenGrant> | null;
  if (!g || typeof g !== 'object' || g.kind !== GRANT_KIND) return `a grant is a ${GRANT_KIND} statement`;
  for (const k of ['runner', 'pool', 'tokenId', 'tokenKey', 'issuedAt', 'expiresAt'] as const)
    if (typeof g[k] !== 'string' || g[k].length === 0) return `grant.${k} must be a string`;
  if (!isKey(g.tokenKey as string)) return 'grant.tokenKey is not a base64 Ed25519 public key';
  if (g.labels === null || typeof g.labels !== 'object') return 'grant.labels must be an object';
  if (typeof g.temporary !== 'boolean') return 'grant.temporary must be a boolean';
  if (typeof g.slots !== 'number' || !Number.isInteger(g.slots)) return 'grant.slots must be a whole number';
  const issued = Date.parse(g.issuedAt as string);
  const expires = Date.parse(g.expiresAt as string);
  if (Number.isNaN(issued) || Number.isNaN(expires)) return 'grant.issuedAt and grant.expiresAt must be times';
  if (expires <= issued) return `the token would expire at once (${g.expiresAt})`;
  if (expires - issued > MAX_TOKEN_TTL_MS)
    return `a token lives at most 7 days (issued ${g.issuedAt}, expires ${g.expiresAt})`;
  if (nowMs !== undefined) {
    if (issued > nowMs + CLOCK_SKEW_MS) return `grant.issuedAt ${g.issuedAt} is in the future`;
    if (expires > nowMs + MAX_TOKEN_TTL_MS + CLOCK_SKEW_MS)
      return `a token lives at most 7 days (expires ${g.expiresAt})`;
    if (expires <= nowMs) return `the token would expire at once (${g.expiresAt})`;
  }
  return null;
}

/** A problem with a registration proof's fields (not its signature), or null. */
export function proofProblem(proof: unknown): string | null {
  const p = proof as Partial<RegistrationProof> | null;
  if (!p || typeof p !== 'object' || p.kind !== PROOF_KIND) return `a proof is a ${PROOF_KIND} statement`;
  for (const k of ['runner', 'tokenId', 'runnerId', 'publicKey', 'signingKey', 'at'] as const)
    if (typeof p[k] !== 'string' || p[k].length === 0) return `proof.${k} must be a string`;
  if (!isKey(p.signingKey as string)) return 'proof.signingKey is not a base64 Ed25519 public key';
  if (Number.isNaN(Date.parse(p.at as string))) return 'proof.at must be a time';
  return null;
}

/** A problem with an operator signature's fields, or null; the time is checked against `nowMs`. */
export function signatureProblem(sig: unknown, nowMs: number): string | null {
  const s = sig as Partial<OperatorSignature> | null;
  if (!s || typeof s !== 'object')
    return 'this command needs an operator signature (the CLI signs with the operator key file)';
  if (typeof s.nonce !== 'string' || !/^[a-f0-9]{16,64}$/.test(s.nonce))
    return 'operator.nonce must be 16-64 hex digits';
  if (typeof s.signature !== 'string' || fromBase64(s.signature)?.length !== 64)
    return 'operator.signature must be a base64 Ed25519 signature';
  const at = typeof s.at === 'string' ? Date.parse(s.at) : NaN;
  if (Number.isNaN(at)) return 'operator.at must be a time';
  if (Math.abs(at - nowMs) > CLOCK_SKEW_MS)
    return `the operator signature was made at ${s.at}, more than ${CLOCK_SKEW_MS / 60_000} minutes from now: sign again`;
  return null;
}

/** True for base64 of a 32-byte key. */
export function isKey(b64: string): boolean {
  return fromBase64(b64)?.length === 32;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE: Record<string, number> = {};
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET[i] as string] = i;
DECODE['-'] = 62;
DECODE['_'] = 63;

/** base64 or base64url to bytes (no Buffer in the workflow sandbox); null when it is not base64. */
export function fromBase64(text: string): Uint8Array | null {
  if (typeof text !== 'string' || text.length > 4096) return null;
  const clean = text.replace(/=+$/, '');
  if (clean.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let n = 0;
  for (const ch of clean) {
    const v = DECODE[ch];
    if (v === undefined) return null;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}
