/** Instance tokens: one per instance, derived so a retried launch gets the same ones. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveToken, instanceToken, tokenHash } from '../../src/fleet/token';
import { tokenSha256 } from '../../src/registry/state';

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
    expect(a.hash).toBe(tokenSha256(a.token)); // as the registry workflow computes it
  });
});

describe('token hashes', () => {
  it('the registry workflow hashes a token in clear as the worker does (sha256, known digests)', () => {
    expect(tokenSha256('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(tokenSha256('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    for (const s of ['a'.repeat(64), 'héllo wörld ✓', deriveToken(SECRET, 'ci', 'id-1')])
      expect(tokenSha256(s)).toBe(createHash('sha256').update(s, 'utf8').digest('hex'));
  });

  it('a derived token names its id and differs by id and secret', () => {
    const t = deriveToken(SECRET, 'ci', 'id-1');
    expect(t).toMatch(/^rfr_id-1_[A-Za-z0-9_-]{43}$/);
    expect(tokenHash(t)).toBe(tokenSha256(t));
    expect(deriveToken(SECRET, 'ci', 'id-2')).not.toBe(t);
    expect(deriveToken('t'.repeat(32), 'ci', 'id-1')).not.toBe(t);
  });
});
