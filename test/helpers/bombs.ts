/** Decompression bombs for tests, made cheaply: gzip members of zeros, concatenated (gunzip reads them all). */
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const MiB = 1024 * 1024;

/** A gzip stream that inflates to `mib` MiB of zeros (512 MiB: ~510 KiB, the bomb). */
export function gzipBomb(mib: number): Buffer {
  const member = gzipSync(Buffer.alloc(MiB), { level: 9 });
  return Buffer.concat(Array.from({ length: mib }, () => member));
}

/** A process's resident memory now and at its peak, in MiB (Linux). */
export function rss(pid: number | 'self' = 'self'): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { now: Math.round(kib('VmRSS') / 1024), peak: Math.round(kib('VmHWM') / 1024) };
}
