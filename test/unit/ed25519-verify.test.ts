/**
 * `verifyEd25519` (the run's check of runner proofs, with a key's table built after a few uses)
 * gives `ed25519.verify`'s answer on good signatures, each byte of a signature or message
 * changed, another key, S out of range, R or the key not a point, wrong lengths; and, being the
 * cofactorless check, refuses what ZIP-215 alone lets through (a key with a small-order part).
 */
import { ed25519, ED25519_TORSION_SUBGROUP } from '@noble/curves/ed25519';
import { bytesToNumberLE, concatBytes } from '@noble/curves/utils';
import { sha512 } from '@noble/hashes/sha2';
import { describe, expect, it } from 'vitest';
import { verifyEd25519 } from '../../src/security/ed25519-verify';

const encode = (text: string) => new TextEncoder().encode(text);
/** L, the group order, little-endian: S = L is out of range. */
const ORDER_LE = (() => {
  let n = ed25519.Point.Fn.ORDER;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
})();

describe('verifyEd25519', () => {
  const secret = ed25519.utils.randomSecretKey();
  const key = ed25519.getPublicKey(secret);
  const other = ed25519.getPublicKey(ed25519.utils.randomSecretKey());
  const messages = Array.from({ length: 12 }, (_, i) => encode(`{"about":"execution","run":"run/g/${i}"}`));
  const signatures = messages.map((m) => ed25519.sign(m, secret));

  it('accepts what ed25519.verify accepts, before and after the key is precomputed', () => {
    for (const [i, m] of messages.entries()) {
      expect(verifyEd25519(signatures[i] as Uint8Array, m, key)).toBe(true);
      expect(verifyEd25519(signatures[i] as Uint8Array, m, other)).toBe(false);
    }
  });

  it('refuses what ed25519.verify refuses: each signature byte and message byte changed', () => {
    const sig = signatures[0] as Uint8Array;
    const msg = messages[0] as Uint8Array;
    let refused = 0;
    for (let i = 0; i < 64; i++) {
      const bad = sig.slice();
      bad[i] = (bad[i] as number) ^ 0x01;
      const expected = ed25519.verify(bad, msg, key);
      expect(verifyEd25519(bad, msg, key), `signature byte ${i}`).toBe(expected);
      if (!expected) refused++;
    }
    expect(refused).toBe(64);
    for (let i = 0; i < msg.length; i++) {
      const bad = msg.slice();
      bad[i] = (bad[i] as number) ^ 0x20;
      expect(verifyEd25519(sig, bad, key), `message byte ${i}`).toBe(false);
    }
  });

  it('refuses S out of range, a key or R that is no point, and wrong lengths, as ed25519.verify does', () => {
    const sig = signatures[1] as Uint8Array;
    const msg = messages[1] as Uint8Array;
    const bigS = sig.slice();
    bigS.set(ORDER_LE, 32);
    expect(ed25519.verify(bigS, msg, key)).toBe(false);
    expect(verifyEd25519(bigS, msg, key)).toBe(false);
    // y = 2 is not the y of a point of ed25519.
    const notPoint = new Uint8Array(32);
    notPoint[0] = 2;
    expect(verifyEd25519(sig, msg, notPoint)).toBe(ed25519.verify(sig, msg, notPoint));
    const badR = sig.slice();
    badR.set(notPoint, 0);
    expect(verifyEd25519(badR, msg, key)).toBe(false);
    expect(verifyEd25519(sig.subarray(0, 63), msg, key)).toBe(false);
    expect(verifyEd25519(sig, msg, key.subarray(0, 31))).toBe(false);
  });

  it('is the cofactorless check: a key with a small-order part, which ZIP-215 lets through, is refused', () => {
    // A' = A + T, T of order 8; signed as an honest signer would with A's scalar: ZIP-215 checks
    // [8]SB = [8]R + [8]kA' and accepts; SB - kA' = R - kT is not R unless 8 divides k.
    const Point = ed25519.Point;
    const L = Point.Fn.ORDER;
    const T = ED25519_TORSION_SUBGROUP.map((hex) => Point.fromHex(hex)).find(
      (p) => !p.double().double().is0(),
    ) as InstanceType<typeof Point>;
    const { scalar, prefix, point } = ed25519.utils.getExtendedPublicKey(secret);
    const mixed = point.add(T).toBytes();
    const le = (n: bigint) => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
    let tried = 0;
    for (const m of messages) {
      const r = bytesToNumberLE(sha512(concatBytes(prefix, m))) % L;
      const R = Point.BASE.multiply(r).toBytes();
      const k = bytesToNumberLE(sha512(concatBytes(R, mixed, m))) % L;
      if (k % 8n === 0n) continue;
      const sig = concatBytes(R, le((r + k * scalar) % L));
      expect(ed25519.verify(sig, m, mixed)).toBe(true);
      expect(verifyEd25519(sig, m, mixed)).toBe(false);
      tried++;
    }
    expect(tried).toBeGreaterThan(0);
  });
});
