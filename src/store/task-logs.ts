/**
 * Task logs in the object store: how a runner lays them out and how a control worker reads them.
 *
 * One attempt's log is a set of parts, each named by the byte offset it starts at; the part
 * written once the attempt has ended is marked `.last` (it may be empty):
 *
 *   <prefix>logs/run/<group>/<id>/<task>/<attempt>/000000000000000        (bytes 0..)
 *   <prefix>logs/run/<group>/<id>/<task>/<attempt>/000000000065536.last   (bytes 65536.., the end)
 *
 * S3 has no append: a part per shipment is the unit a crash can lose. A task shorter than one
 * shipment interval costs one PUT. Keys begin with the run's
 * group, so a lifecycle rule on `logs/run/<group>/` sets that group's retention (docs/operating.md).
 */
import { wholeUtf8Length } from '../bytes';
import type { ObjectStore } from './object-store';

/** A chunk of a log as `run logs` reads it. */
export interface StoredLogChunk {
  data: string;
  nextOffset: number;
  /** False when the store has no part of this attempt's log. */
  exists: boolean;
  /** True once the attempt's runner wrote its end and everything has been read. */
  complete: boolean;
}

/** Where one attempt's log lives, below the store's prefix (ends with `/`). */
export function taskLogPrefix(runId: string, task: string, attempt: number): string {
  // The run id is `run/<group>/<id>` (safe characters); a task name may hold others (matrix cells).
  return `logs/${runId}/${encodeURIComponent(task)}/${attempt}/`;
}

/** The key of the part that starts at `offset`. */
export function logPartKey(prefix: string, offset: number): string {
  return `${prefix}${String(offset).padStart(15, '0')}`;
}

/** The key of the last part, which starts at `offset` and ends the log. */
export function logLastPartKey(prefix: string, offset: number): string {
  return `${logPartKey(prefix, offset)}.last`;
}

/** A part's name below its attempt's prefix (nothing deeper: another run's keys may continue it). */
const PART_RE = /^(\d{15})(\.last)?$/;

/** The parts of an attempt's log among the objects listed under its prefix, by offset. */
function logParts(prefix: string, objects: { key: string; size: number }[]) {
  return objects
    .map((o) => {
      const m = PART_RE.exec(o.key.slice(prefix.length));
      return m ? { start: Number(m[1]), last: m[2] !== undefined, key: o.key, size: o.size } : null;
    })
    .filter((p): p is { start: number; last: boolean; key: string; size: number } => p !== null)
    .sort((a, b) => a.start - b.start);
}

/** Bytes of an attempt's log already in the store: where a resumed shipment goes on from. */
export async function storedLogSize(store: ObjectStore, prefix: string): Promise<number> {
  return logParts(prefix, await store.list(prefix)).reduce((size, p) => Math.max(size, p.start + p.size), 0);
}

/** Reads up to `limit` bytes of an attempt's log from `offset`. */
export async function readStoredLog(
  store: ObjectStore,
  req: { runId: string; task: string; attempt: number; offset: number; limit: number },
): Promise<StoredLogChunk> {
  const prefix = taskLogPrefix(req.runId, req.task, req.attempt);
  const parts = logParts(prefix, await store.list(prefix));
  const last = parts.find((p) => p.last);
  // The whole log's size, once its last part is there.
  const size = last ? last.start + last.size : null;
  if (parts.length === 0) return { data: '', nextOffset: req.offset, exists: false, complete: false };
  const chunks: Buffer[] = [];
  let at = req.offset;
  let left = req.limit;
  for (const part of parts) {
    if (left <= 0 || part.size === 0) continue;
    const end = part.start + part.size;
    if (end <= at) continue;
    // Parts are contiguous: a gap means one is still being written (or was lost); stop before it.
    if (part.start > at) break;
    const from = at - part.start;
    const length = Math.min(left, part.size - from);
    const bytes = await store.get(part.key, { start: from, end: from + length - 1 });
    if (!bytes) break;
    chunks.push(bytes);
    at += bytes.length;
    left -= bytes.length;
  }
  // Never half a character: the rest of it comes with the next read.
  const read = Buffer.concat(chunks);
  const whole = at < (size ?? Infinity) ? wholeUtf8Length(read) : read.length;
  at -= read.length - whole;
  return {
    data: read.subarray(0, whole).toString('utf8'),
    nextOffset: at,
    exists: true,
    complete: size !== null && at >= size,
  };
}
