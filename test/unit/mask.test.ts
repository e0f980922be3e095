/** Masking a task's secrets in its log (`src/runner/mask.ts`), also in a log read while it grows. */
import { describe, expect, it } from 'vitest';
import {
  MAX_SECRET_PIECE_BYTES,
  MAX_SECRET_PIECES,
  maskSecrets,
  maskableLength,
  secretPatterns,
} from '../../src/runner/mask';

const patterns = secretPatterns(['hunter2-key', 'a\nline-two', 'x']);

/** Reads `log` the way the shipper does, `step` bytes at a time, and joins what it would ship. */
function shipInPieces(log: string, step: number): string {
  const bytes = Buffer.from(log);
  let shipped = 0;
  let out = '';
  for (let end = step; shipped < bytes.length; end = Math.min(bytes.length, end + step)) {
    const data = Buffer.from(bytes.subarray(shipped, end));
    const n = maskableLength(data, patterns, end === bytes.length);
    out += maskSecrets(data.subarray(0, n), patterns).toString();
    shipped += n;
  }
  return out;
}

describe('masking secrets', () => {
  it('masks each occurrence with as many * as it has bytes; each line of a multi-line secret; not pieces under 3 bytes', () => {
    expect(patterns.map(String)).toEqual(['hunter2-key', 'line-two']);
    const masked = maskSecrets(Buffer.from('k=hunter2-key;hunter2-key\nline-two x a\n'), patterns).toString();
    expect(masked).toBe('k=***********;***********\n******** x a\n');
  });

  it('never shows a secret cut in two, however the log is read while it is written', () => {
    const log = 'start\nkey=hunter2-key and hunter2-keyhunter2-key; line-two!\nend hunter2-k';
    const whole = maskSecrets(Buffer.from(log), patterns).toString();
    for (let step = 1; step <= log.length; step++) {
      const shipped = shipInPieces(log, step);
      expect(shipped, `read ${step} bytes at a time`).toBe(whole);
      expect(shipped).not.toContain('hunter2-key');
    }
  });

  it('holds back the end of an unfinished line only as far as a secret may reach', () => {
    const data = Buffer.from('progress 10% hunte');
    expect(maskableLength(data, patterns, false)).toBe(data.length - 10);
    expect(maskableLength(data, [], false)).toBe(data.length);
    expect(maskableLength(data, patterns, true)).toBe(data.length);
    expect(maskableLength(Buffer.from('done\nhunter2'), patterns, false)).toBe(5);
  });

  it('orders secrets by bytes (a short multi-byte secret is longer than it looks) and masks overlapping ones whole', () => {
    const wide = secretPatterns(['abcdefghi', 'ünïcödé!']);
    expect(wide.map((p) => p.length)).toEqual([12, 9]);
    // Held back far enough for the 12-byte secret, though it has fewer characters than the other.
    expect(maskableLength(Buffer.from('xxxxünïcödé'), wide, false)).toBe(Buffer.byteLength('xxxxünïcödé') - 11);
    const overlapping = secretPatterns(['abcdef', 'defXYZ']);
    expect(maskSecrets(Buffer.from('-abcdefXYZ-'), overlapping).toString()).toBe('-*********-');
  });

  it('refuses secrets a log cannot be masked with in reasonable time', () => {
    const many = Array.from({ length: MAX_SECRET_PIECES + 1 }, (_, i) => `secret-${i}`).join('\n');
    expect(() => secretPatterns([many])).toThrow(/hold 257 lines, the longest 10 bytes: a log masks at most 256 lines/);
    expect(() => secretPatterns(['x'.repeat(MAX_SECRET_PIECE_BYTES + 1)])).toThrow(/at most 16384 bytes/);
  });
});
