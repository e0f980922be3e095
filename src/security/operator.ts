/**
 * Ed25519 keys and signatures on the Node side: the operator key file (`runfleet operator-key
 * create`, made by `runfleet up` on its first start), registration tokens as key seeds, signing
 * statements (src/security/statements.ts) and verifying them with node:crypto. What the
 * workflow checks with @noble/curves, the control worker checks here with the same bytes.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { RunfleetError } from '../errors';
import { fromBase64, statementBytes, type Statement } from './statements';

/** The DER prefix of an Ed25519 PKCS#8 private key; the 32-byte seed follows. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** The DER prefix of an Ed25519 SPKI public key; the 32 raw bytes follow. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const KEY_FILE_KIND = 'runfleet/operator-key';

/** An Ed25519 key pair as Runfleet stores it: base64 of the 32-byte seed and of the raw public key. */
export interface SigningKeyPair {
  seed: string;
  publicKey: string;
}

export function generateSigningKey(): SigningKeyPair {
  return signingKeyFromSeed(randomBytes(32).toString('base64'));
}

/** The key pair of a seed (base64 or base64url of 32 bytes). */
export function signingKeyFromSeed(seed: string): SigningKeyPair {
  const bytes = fromBase64(seed);
  if (bytes?.length !== 32) throw new RunfleetError('InvalidArgument', 'an Ed25519 seed is 32 bytes of base64');
  const raw = Buffer.from(bytes);
  return { seed: raw.toString('base64'), publicKey: rawPublicKey(createPublicKey(privateKeyOf(raw))) };
}

/** Signs a statement with a seed; base64 of the 64-byte signature. */
export function signStatement(seed: string, statement: Statement): string {
  const bytes = fromBase64(seed);
  if (bytes?.length !== 32) throw new RunfleetError('InvalidArgument', 'an Ed25519 seed is 32 bytes of base64');
  return sign(null, statementBytes(statement), privateKeyOf(Buffer.from(bytes))).toString('base64');
}

/** Verifies a statement's signature with node:crypto; false for anything malformed. */
export function verifyStatementNode(publicKeyB64: string, statement: Statement, signatureB64: string): boolean {
  try {
    const key = fromBase64(publicKeyB64);
    const sig = fromBase64(signatureB64);
    if (key?.length !== 32 || sig?.length !== 64) return false;
    return verify(null, statementBytes(statement), publicKeyObject(key), Buffer.from(sig));
  } catch {
    return false;
  }
}

// --- registration tokens ---------------------------------------------------------------------

/** A registration token `rfr_<id>_<seed>`: the seed is the token key's; only the public half is sent. */
export interface NewToken {
  /** The token in clear: shown once, never stored. */
  token: string;
  id: string;
  /** base64 of the token key's raw Ed25519 public key. */
  publicKey: string;
}

/** Splits a token into its id and key pair; InvalidArgument when it is not a token. */
export function parseToken(token: string): { id: string; key: SigningKeyPair } {
  const match = /^rfr_([a-f0-9]{8,32})_([A-Za-z0-9_-]{43})$/.exec(token.trim());
  if (!match) throw new RunfleetError('TokenRejected', 'token rejected: not a registration token (rfr_<id>_<secret>)');
  return { id: match[1] as string, key: signingKeyFromSeed(match[2] as string) };
}

/** The token of an id and a 32-byte seed (random for `runner create`, derived for a fleet). */
export function tokenOf(id: string, seed: Uint8Array): NewToken {
  const token = `rfr_${id}_${Buffer.from(seed).toString('base64url')}`;
  return { token, id, publicKey: parseToken(token).key.publicKey };
}

// --- the operator key file -------------------------------------------------------------------

/** The operator key as its file holds it. */
export interface OperatorKey {
  kind: typeof KEY_FILE_KIND;
  seed: string;
  publicKey: string;
  createdAt: string;
}

/** Writes a new operator key file (0600, its directory 0700); Conflict when one is there. */
export function createOperatorKeyFile(file: string): OperatorKey {
  if (existsSync(file))
    throw new RunfleetError('Conflict', `an operator key exists at ${file}; it is not replaced (remove it first)`);
  const pair = generateSigningKey();
  const key: OperatorKey = {
    kind: KEY_FILE_KIND,
    seed: pair.seed,
    publicKey: pair.publicKey,
    createdAt: new Date().toISOString(),
  };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(key, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return key;
}

/** Reads the operator key file; null when it does not exist, InvalidConfig when it is damaged. */
export function readOperatorKeyFile(file: string): OperatorKey | null {
  if (!existsSync(file)) return null;
  let value: Partial<OperatorKey>;
  try {
    value = JSON.parse(readFileSync(file, 'utf8')) as Partial<OperatorKey>;
  } catch (err) {
    throw new RunfleetError('InvalidConfig', `operator key ${file} is unreadable: ${(err as Error).message}`);
  }
  if (value?.kind !== KEY_FILE_KIND || typeof value.seed !== 'string')
    throw new RunfleetError('InvalidConfig', `operator key ${file} is not a ${KEY_FILE_KIND} file`);
  const pair = signingKeyFromSeed(value.seed);
  return { kind: KEY_FILE_KIND, seed: pair.seed, publicKey: pair.publicKey, createdAt: String(value.createdAt ?? '') };
}

/**
 * The operator public key a control worker verifies with: the configured one, else the public
 * half of the key file when this host has it (`runfleet up`), else null (it then seals no keys
 * and applies no operator command).
 */
export function operatorPublicKey(config: { operator: { keyFile: string; publicKey: string | null } }): string | null {
  if (config.operator.publicKey) return config.operator.publicKey;
  return readOperatorKeyFile(config.operator.keyFile)?.publicKey ?? null;
}

/** node:crypto's key object of a raw 32-byte Ed25519 public key; throws when it is not one. */
export function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(raw)]), format: 'der', type: 'spki' });
}

function privateKeyOf(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

function rawPublicKey(key: KeyObject): string {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length).toString('base64');
}
