/**
 * Masks a task's secrets in its log before anyone reads it (`run logs`, the object store): each
 * occurrence of a secret value becomes as many `*` as it has bytes. The same length keeps a
 * log's byte offsets the same on the runner and in the store, so a reader can move from one to
 * the other; it tells a secret's length, not its value.
 */
import { RunfleetError } from '../errors';

/** Pieces shorter than this are not masked: "1" or "on" would turn every such byte into `*`. */
export const MIN_SECRET_BYTES = 3;
/**
 * Pieces masked at most, and the longest: masking costs a search per piece over every byte of
 * the log, so a task whose secrets would stall its runner is refused instead.
 */
export const MAX_SECRET_PIECES = 256;
export const MAX_SECRET_PIECE_BYTES = 16 * 1024;

/**
 * The byte strings to mask for these values: each line of a multi-line value on its own,
 * longest (in bytes) first. `RunfleetError` TaskRefused past the limits above.
 */
export function secretPatterns(values: string[]): Buffer[] {
  const pieces = new Set<string>();
  for (const value of values) {
    for (const line of value.split(/\r?\n/)) {
      if (Buffer.byteLength(line) >= MIN_SECRET_BYTES) pieces.add(line);
    }
  }
  const patterns = [...pieces].map((p) => Buffer.from(p)).sort((a, b) => b.length - a.length);
  if (patterns.length > MAX_SECRET_PIECES || (patterns[0]?.length ?? 0) > MAX_SECRET_PIECE_BYTES) {
    throw new RunfleetError(
      'TaskRefused',
      `the secret_env values hold ${patterns.length} lines, the longest ${patterns[0]?.length ?? 0} bytes: a log masks at most ${MAX_SECRET_PIECES} lines of at most ${MAX_SECRET_PIECE_BYTES} bytes`,
    );
  }
  return patterns;
}

/**
 * `data` with every occurrence of a pattern masked, in place. Occurrences are found in the bytes
 * as they were, so two secrets that overlap are both masked whole.
 */
export function maskSecrets(data: Buffer, patterns: Buffer[]): Buffer {
  if (patterns.length === 0) return data;
  const ranges: [number, number][] = [];
  for (const pattern of patterns) {
    for (let at = data.indexOf(pattern); at !== -1; at = data.indexOf(pattern, at + 1)) {
      ranges.push([at, at + pattern.length]);
    }
  }
  for (const [from, to] of ranges) data.fill(0x2a, from, to);
  return data;
}

/**
 * How much of `data` (read from a log that may still grow) can be shown masked: up to its last
 * newline (no secret pattern holds one), or, in a line that has none yet, all but the bytes where
 * a secret may still be starting, and never a cut through a secret. `final`: nothing more will be
 * written, everything can.
 */
export function maskableLength(data: Buffer, patterns: Buffer[], final: boolean): number {
  if (final || patterns.length === 0) return data.length;
  const newline = data.lastIndexOf(0x0a);
  if (newline !== -1) return newline + 1;
  let cut = Math.max(0, data.length - (longestPattern(patterns) - 1));
  // A whole secret across the cut moves it to the secret's end (it is all in `data`).
  for (let moved = true; moved;) {
    moved = false;
    for (const pattern of patterns) {
      const from = Math.max(0, cut - pattern.length + 1);
      const at = data.indexOf(pattern, from);
      if (at !== -1 && at < cut && at + pattern.length > cut) {
        cut = at + pattern.length;
        moved = true;
      }
    }
  }
  return cut;
}

/** The longest pattern's bytes (0 for none). */
export function longestPattern(patterns: Buffer[]): number {
  return patterns.reduce((max, p) => Math.max(max, p.length), 0);
}
