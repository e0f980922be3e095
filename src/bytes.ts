/** Sizes as people write them in run files and config: `512Mi`, `2Gi`, `100M`, or bytes. Sandbox-safe. */

const UNIT_BYTES: Record<string, number> = {
  '': 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  t: 1e12,
  ki: 2 ** 10,
  mi: 2 ** 20,
  gi: 2 ** 30,
  ti: 2 ** 40,
};
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?$/i;

/** Bytes for a size (`512Mi`, `1.5G`, `1048576`), or null when it is not one. */
export function parseByteSize(value: string | number): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : null;
  const match = SIZE_RE.exec(value.trim());
  if (!match) return null;
  const bytes = Math.floor(Number(match[1]) * (UNIT_BYTES[(match[2] ?? '').toLowerCase()] ?? Number.NaN));
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** `536870912` -> `512Mi`; sizes that are not a whole number of KiB stay in bytes. */
export function formatByteSize(bytes: number): string {
  for (const [unit, size] of [
    ['Ti', 2 ** 40],
    ['Gi', 2 ** 30],
    ['Mi', 2 ** 20],
    ['Ki', 2 ** 10],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}`;
}

/**
 * How many bytes of `data` end on a whole UTF-8 character: a chunk of a log cut inside a character
 * would show it as U+FFFD twice (its two halves), once in each chunk. The rest comes with the next.
 * A chunk that is only part of one character is taken whole (a reader must always get somewhere).
 */
export function wholeUtf8Length(data: Uint8Array): number {
  // Look back over at most 3 continuation bytes (10xxxxxx) for the character's first byte.
  for (let back = 1; back <= Math.min(4, data.length); back++) {
    const byte = data[data.length - back] as number;
    if ((byte & 0xc0) === 0x80) continue;
    const size = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return size > back && data.length > back ? data.length - back : data.length;
  }
  return data.length;
}

/** UTF-8 bytes of a string, counted (no TextEncoder needed in the workflow sandbox). */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4; // a surrogate pair: one 4-byte character
      i++;
    } else n += 3;
  }
  return n;
}

/** Kubernetes' CPU quantity: cores ("2", 0.5) or millicores ("500m"). Returns millicores or null. */
export function parseCpu(value: string | number): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? Math.round(value * 1000) : null;
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(value.trim());
  if (!m) return null;
  const n = Number(m[1]);
  return m[2] === 'm' ? (Number.isInteger(n) ? n : null) : Math.round(n * 1000);
}

/** Millicores as Kubernetes writes them: "500m", "2". */
export function formatCpu(millis: number): string {
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}
