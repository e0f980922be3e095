/**
 * A task's log file as a driver writes what its container prints: appended as it comes (skipping
 * what the file already has after a re-attach), and made whole once the engine's full log is
 * known. Shared by the docker and kubernetes drivers.
 */
import { appendFileSync, closeSync, openSync, readFileSync, statSync, truncateSync, writeSync } from 'node:fs';
import { Writable } from 'node:stream';

/**
 * Appends to the log file, dropping the first `skip` bytes (what the file has already).
 * Synchronous writes: the file is complete the moment the stream is, and nothing is written
 * after `close`.
 */
export function logSink(file: string, skip: number): { writable: Writable; written(): number; close(): void } {
  const fd = openSync(file, 'a');
  let left = skip;
  let closed = false;
  let written = 0;
  const write = (chunk: Buffer) => {
    let data = chunk;
    if (left > 0) {
      const dropped = Math.min(left, data.length);
      left -= dropped;
      data = data.subarray(dropped);
    }
    if (data.length > 0 && !closed) written += writeSync(fd, data);
  };
  return {
    writable: new Writable({
      write(chunk: Buffer, _enc, done) {
        write(chunk);
        done();
      },
    }),
    written: () => written,
    close() {
      if (closed) return;
      closed = true;
      closeSync(fd);
    },
  };
}

/**
 * Makes the end of the log file `expected`, given that its last `written` bytes were streamed
 * for it: drops what the stream repeated, appends what it missed.
 */
export function reconcileLog(file: string, expected: Buffer, written: number): void {
  if (written > expected.length) truncateSync(file, fileSize(file) - (written - expected.length));
  else if (written < expected.length) appendFileSync(file, expected.subarray(written));
}

export function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

export function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** How long a container's output may take to end after the container did. */
const LOG_DRAIN_MS = 2_000;

/** Waits for a container's output stream to end after the container did, LOG_DRAIN_MS at most. */
export async function drain(ended: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([ended, new Promise((r) => (timer = setTimeout(r, LOG_DRAIN_MS)))]);
  clearTimeout(timer);
}
