/**
 * Ships one task attempt's log to the object store while the task runs (`src/store/task-logs.ts`
 * has the layout): every `intervalMs` what was written since goes up as a new part, masked, so a
 * runner that dies loses at most the last interval. `finish` ships the rest and writes the end;
 * when the store is down it keeps trying (the task's outcome does not wait for it) and says so.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { backoff } from '../backoff';
import type { ObjectStore } from '../store/object-store';
import { logLastPartKey, logPartKey } from '../store/task-logs';
import { maskSecrets, maskableLength } from './mask';

/** A part holds at most this much: a chatty task ships in pieces a reader gets in a few reads. */
const PART_MAX_BYTES = 4 * 2 ** 20;
/** A store that stays down this long gets no more tries for this log (it is still on the runner). */
const GIVE_UP_MS = 3_600_000;

export interface LogShipperOptions {
  store: ObjectStore;
  /** `taskLogPrefix(run, task, attempt)`. */
  prefix: string;
  /** The attempt's log file on the runner. */
  file: string;
  /** `secretPatterns(...)` of the task's secret values. */
  secrets: Buffer[];
  intervalMs: number;
  /** Bytes already in the store (a runner that re-attached to the task). Default 0. */
  from?: number;
  /** The task, for messages: `run/g/1 build attempt 1`. */
  what: string;
  log: (line: string) => void;
}

export class LogShipper {
  private shipped: number;
  private timer: NodeJS.Timeout | null = null;
  private shipping: Promise<void> = Promise.resolve();
  /** Set while the store refuses: logged once per outage, not once per interval. */
  private failing = false;

  constructor(private readonly opts: LogShipperOptions) {
    this.shipped = opts.from ?? 0;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.shipping = this.shipping.then(() => this.tick());
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  /**
   * Ships the rest, its last part marked as such, trying again until the store takes it (at most
   * an hour). Resolves true once the log is whole in the store, false when it gave up.
   */
  async finish(signal?: AbortSignal): Promise<boolean> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.shipping;
    const since = Date.now();
    for await (const { attempt, delayMs } of backoff({
      initialMs: 1_000,
      maxMs: 60_000,
      ...(signal ? { signal } : {}),
    })) {
      try {
        while (!(await this.shipNext(true)));
        if (attempt > 1)
          this.opts.log(`log of ${this.opts.what}: stored in ${this.opts.store.where} after ${attempt} tries`);
        return true;
      } catch (err) {
        if (Date.now() - since + delayMs > GIVE_UP_MS) {
          this.opts.log(
            `log of ${this.opts.what}: the object store refused it for an hour (${(err as Error).message}); it stays on this runner only`,
          );
          return false;
        }
        this.opts.log(
          `log of ${this.opts.what}: upload failed (${(err as Error).message}); the task's outcome is recorded, the log is tried again in ${delayMs / 1000}s`,
        );
      }
    }
    return false;
  }

  /** Stops shipping without an end (the runner is stopping; a restart resumes from the store). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    try {
      // Until nothing more can be shown: the next tick takes what comes meanwhile.
      for (let before = -1; before !== this.shipped;) {
        before = this.shipped;
        await this.shipNext(false);
      }
      if (this.failing) this.opts.log(`log of ${this.opts.what}: the object store takes it again`);
      this.failing = false;
    } catch (err) {
      if (!this.failing)
        this.opts.log(
          `log of ${this.opts.what}: upload failed (${(err as Error).message}); trying again while it runs`,
        );
      this.failing = true;
    }
  }

  /**
   * Ships the next part. While the task runs: what can be shown of what came since (false). At
   * its end: a full part as one more of them (false), or everything left as the last (true).
   */
  private async shipNext(final: boolean): Promise<boolean> {
    const data = readFrom(this.opts.file, this.shipped, PART_MAX_BYTES);
    // A full part may stop inside a secret: only the last one is cut anywhere.
    const last = final && data.length < PART_MAX_BYTES;
    const length = maskableLength(data, this.opts.secrets, last);
    if (length === 0 && !last) return false;
    const key = last ? logLastPartKey(this.opts.prefix, this.shipped) : logPartKey(this.opts.prefix, this.shipped);
    await this.opts.store.put(key, maskSecrets(data.subarray(0, length), this.opts.secrets));
    this.shipped += length;
    return last;
  }
}

/** Up to `max` bytes of `file` from `offset` (none when it is missing). */
export function readFrom(file: string, offset: number, max: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.max(0, Math.min(max, size - offset));
    const buffer = Buffer.alloc(length);
    const read = length > 0 ? readSync(fd, buffer, 0, length, offset) : 0;
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}
