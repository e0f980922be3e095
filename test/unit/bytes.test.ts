/** Log chunks never end inside a UTF-8 character (`wholeUtf8Length` in `src/bytes.ts`). */
import { describe, expect, it } from 'vitest';
import { wholeUtf8Length } from '../../src/bytes';

describe('wholeUtf8Length', () => {
  it('stops before a character cut at the end, and takes whole ones as they are', () => {
    const text = Buffer.from('aé€😀'); // 1 + 2 + 3 + 4 bytes
    const ends = Array.from({ length: text.length + 1 }, (_, n) => wholeUtf8Length(text.subarray(0, n)));
    // A cut inside é (at 2), € (4, 5) or 😀 (7, 8, 9) goes back to the character's start.
    expect(ends).toEqual([0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10]);
    // Every chunking of the text in reads of 4 bytes or more joins back to it, without a U+FFFD.
    for (let limit = 4; limit <= text.length; limit++) {
      let out = '';
      for (let at = 0; at < text.length;) {
        const chunk = text.subarray(at, at + limit);
        const n = wholeUtf8Length(chunk);
        out += chunk.subarray(0, n).toString('utf8');
        at += n;
      }
      expect(out, `read ${limit} bytes at a time`).toBe('aé€😀');
    }
  });

  it('takes a chunk that is only part of one character whole (the reader moves on)', () => {
    expect(wholeUtf8Length(Buffer.from('😀').subarray(0, 2))).toBe(2);
  });
});
