import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/fleet/sha256';
import { deriveToken, tokenHash } from '../../src/fleet/token';

describe('sha256 for the workflow sandbox', () => {
  it('matches node:crypto on block boundaries and random input', () => {
    const inputs = [
      '',
      'abc',
      'a'.repeat(55),
      'a'.repeat(56),
      'a'.repeat(63),
      'a'.repeat(64),
      'a'.repeat(65),
      'héllo wörld ✓',
    ];
    for (let i = 0; i < 50; i++) inputs.push(randomBytes(i * 7).toString('base64'));
    for (const s of inputs) expect(sha256Hex(s)).toBe(createHash('sha256').update(s, 'utf8').digest('hex'));
  });

  it('hashes a derived token the way the worker stores it', () => {
    const t = deriveToken('s'.repeat(32), 'ci', 'id-1');
    expect(t).toMatch(/^rfr_id-1_[A-Za-z0-9_-]{43}$/);
    expect(sha256Hex(t)).toBe(tokenHash(t));
    expect(deriveToken('s'.repeat(32), 'ci', 'id-2')).not.toBe(t);
    expect(deriveToken('t'.repeat(32), 'ci', 'id-1')).not.toBe(t);
  });
});
