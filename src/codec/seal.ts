/**
 * Sealed boxes for delivering data keys to one runner: only the holder of the runner's X25519
 * private key can open them, and the control worker needs nothing but the public key.
 *
 * Format v1 (base64): 0x01 | ephemeral public key (32, raw X25519) | nonce (12) | ciphertext | tag (16).
 * The AES-256-GCM key is HKDF-SHA256 of the ECDH secret, salted with both public keys; the
 * version byte and the ephemeral key are authenticated data.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import type { SealedKey } from '../registry/types';
import { RunfleetError } from '../errors';
import type { DataKey, KeyRing } from './keys';

const VERSION = 1;
const RAW_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const INFO = Buffer.from('runfleet-seal-v1');
/** The fixed DER prefix of an X25519 SubjectPublicKeyInfo: the raw key follows it. */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface Identity {
  /** base64 of the SPKI DER: what the runner sends when it registers. */
  publicKey: string;
  /** PKCS8 PEM: stays on the runner (mode 0600). */
  privateKey: string;
}

export function generateIdentity(): Identity {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return {
    publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** Seals `plaintext` for the holder of `publicKeyB64`'s private key. */
export function sealFor(publicKeyB64: string, plaintext: Buffer): string {
  const recipient = parsePublicKey(publicKeyB64);
  const ephemeral = generateKeyPairSync('x25519');
  const ephemeralRaw = rawPublicKey(ephemeral.publicKey);
  const key = deriveKey(
    diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient }),
    ephemeralRaw,
    rawPublicKey(recipient),
  );
  const header = Buffer.concat([Buffer.from([VERSION]), ephemeralRaw]);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(header);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, nonce, body, cipher.getAuthTag()]).toString('base64');
}

/** Opens a box from `sealFor`; throws when it is not for this key or was altered. */
export function openSealed(privateKey: string | KeyObject, sealedB64: string): Buffer {
  const box = Buffer.from(sealedB64, 'base64');
  const headerBytes = 1 + RAW_KEY_BYTES;
  if (box.length < headerBytes + NONCE_BYTES + TAG_BYTES) throw sealError('it is truncated');
  if (box[0] !== VERSION) throw sealError(`unknown format version ${box[0]}`);
  const ephemeralRaw = box.subarray(1, headerBytes);
  const own = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  const ephemeral = createPublicKey({
    key: Buffer.concat([X25519_SPKI_PREFIX, ephemeralRaw]),
    format: 'der',
    type: 'spki',
  });
  const key = deriveKey(
    diffieHellman({ privateKey: own, publicKey: ephemeral }),
    ephemeralRaw,
    rawPublicKey(createPublicKey(own)),
  );
  const nonce = box.subarray(headerBytes, headerBytes + NONCE_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(box.subarray(0, headerBytes));
  decipher.setAuthTag(box.subarray(box.length - TAG_BYTES));
  try {
    return Buffer.concat([
      decipher.update(box.subarray(headerBytes + NONCE_BYTES, box.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    throw sealError('it is not for this key or was altered');
  }
}

/** Keys (a whole ring, or a runner's scopes: `KeyRing.keysFor`), current first, sealed for one runner. */
export function sealKeys(keys: KeyRing | readonly DataKey[], publicKeyB64: string): SealedKey[] {
  const list = Array.isArray(keys)
    ? (keys as readonly DataKey[])
    : (keys as KeyRing).ids().map((id) => (keys as KeyRing).get(id) as DataKey);
  return list.map((k) => ({ id: k.id, sealed: sealFor(publicKeyB64, k.key) }));
}

/** Opens keys sealed by `sealKeys`, in their order (current first): what `KeyRing.set` takes. */
export function openKeys(privateKey: string | KeyObject, sealed: readonly SealedKey[]): DataKey[] {
  return sealed.map((s) => ({ id: s.id, key: openSealed(privateKey, s.sealed) }));
}

function parsePublicKey(b64: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'spki' });
  } catch {
    throw new RunfleetError('InvalidArgument', 'the public key is not a base64 SPKI DER key');
  }
  if (key.asymmetricKeyType !== 'x25519')
    throw new RunfleetError('InvalidArgument', `the public key is ${key.asymmetricKeyType}, not x25519`);
  return key;
}

function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' }).subarray(X25519_SPKI_PREFIX.length);
}

function deriveKey(shared: Buffer, ephemeralRaw: Buffer, recipientRaw: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeralRaw, recipientRaw]), INFO, 32));
}

function sealError(why: string): RunfleetError {
  return new RunfleetError('Internal', `cannot open a sealed data key: ${why}`);
}
