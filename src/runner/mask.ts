/**
 * Masks a task's secrets in its log before anyone reads it (`run logs`, the object store): each
 * occurrence of a secret value becomes as many `*` as it has bytes. The same length keeps a
 * log's byte offsets the same on the runner and in the store, so a reader can move from one to
 * the other; it tells a secret's length, not its value.
 */

/** Pieces shorter than this are not masked: "1" or "on" would turn every such byte into `*`. */
export const MIN_SECRET_BYTES = 3;

/** The byte strings to mask for these values: each line of a multi-line value on its own. */
export function secretPatterns(values: string[]): Buffer[] {
  const pieces = new Set<string>();
  for (const value of values) {
    for (const line of value.split(/\r?\n/)) {
      if (Buffer.byteLength(line) >= MIN_SECRET_BYTES) pieces.add(line);
    }
  }
  // Longest first: a secret that holds another is masked whole.
  return [...pieces].sort((a, b) => b.length - a.length).map((p) => Buffer.from(p));
}

/** `data` with every pattern masked, in place. */
export function maskSecrets(data: Buffer, patterns: Buffer[]): Buffer {
  for (const pattern of patterns) {
    let at = data.indexOf(pattern);
    while (at !== -1) {
      data.fill(0x2a, at, at + pattern.length);
      at = data.indexOf(pattern, at + pattern.length);
    }
  }
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
  const longest = patterns[0]?.length ?? 0;
  let cut = Math.max(0, data.length - (longest - 1));
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
