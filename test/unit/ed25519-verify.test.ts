/**
 * `verifyEd25519` (the run's check of runner proofs, with a key's table built after a few uses)
 * gives `ed25519.verify`'s answer on every input: good signatures, each byte of a signature or
 * message changed, another key, S out of range, R or the key not a point, wrong lengths.
 */
import { ed25519 } from '@noble/curves/ed25519';
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
});
