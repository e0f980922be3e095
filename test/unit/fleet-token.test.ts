/** Instance tokens: one per instance, derived so a retried launch gets the same ones. */
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/fleet/sha256';
import { deriveToken, instanceToken, tokenHash } from '../../src/fleet/token';

const SECRET = 's'.repeat(32);

describe('instance tokens', () => {
  it('differ for every slot, launch, fleet token, fleet and secret', () => {
    const base = instanceToken(SECRET, 'ci', 'f1', 'launch-1', 0);
    const others = [
      instanceToken(SECRET, 'ci', 'f1', 'launch-1', 1),
      instanceToken(SECRET, 'ci', 'f1', 'launch-2', 0),
      instanceToken(SECRET, 'ci', 'f2', 'launch-1', 0),
      instanceToken(SECRET, 'cd', 'f1', 'launch-1', 0),
    ];
    for (const o of others) {
      expect(o.id).not.toBe(base.id);
      expect(o.token).not.toBe(base.token);
      expect(o.hash).not.toBe(base.hash);
    }
    // Another secret: same id (ids are not secret), another token.
    const otherSecret = instanceToken('t'.repeat(32), 'ci', 'f1', 'launch-1', 0);
    expect(otherSecret.id).toBe(base.id);
    expect(otherSecret.token).not.toBe(base.token);
    const slots = new Set(Array.from({ length: 1_000 }, (_, i) => instanceToken(SECRET, 'ci', 'f1', 'l', i).id));
    expect(slots.size).toBe(1_000);
  });

  it('are deterministic: a retried launch derives the same token, which the registry hash matches', () => {
    const a = instanceToken(SECRET, 'ci', 'f1', 'launch-1', 3);
    expect(instanceToken(SECRET, 'ci', 'f1', 'launch-1', 3)).toEqual(a);
    expect(a.id).toMatch(/^[a-f0-9]{32}$/); // the registry's token ids
    expect(a.token).toBe(deriveToken(SECRET, 'ci', a.id));
    expect(a.token.startsWith(`rfr_${a.id}_`)).toBe(true);
    expect(a.hash).toBe(tokenHash(a.token));
    expect(a.hash).toBe(sha256Hex(a.token)); // as the registry workflow computes it
  });
});
