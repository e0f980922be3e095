/**
 * Retries with capped exponential backoff, as a loop the caller writes:
 *
 *   for await (const { delayMs } of backoff({ initialMs: 1_000, maxMs: 30_000, signal })) {
 *     try { return await call(); } catch (err) { log(`${err}; retrying in ${delayMs / 1000}s`); }
 *   }
 *
 * Each step is one attempt: the first at once, each next one after the step's `delayMs` (doubling
 * from `initialMs` up to `maxMs`). Leaving the loop (return, break) waits for nothing; an aborted
 * `signal` ends it, at once even mid-wait. Not for workflows (they use Temporal's `sleep`).
 */
import { sleep } from './sleep';

export interface BackoffOptions {
  /** The wait after the first attempt. */
  initialMs: number;
  /** No wait is longer. */
  maxMs: number;
  /** Ends the attempts (the loop then ends without an error). */
  signal?: AbortSignal;
}

export interface BackoffStep {
  /** 1 for the first attempt. */
  attempt: number;
  /** How long the next attempt waits if this one does not leave the loop. */
  delayMs: number;
}

export async function* backoff(opts: BackoffOptions): AsyncGenerator<BackoffStep, void, undefined> {
  let delayMs = Math.min(opts.initialMs, opts.maxMs);
  for (let attempt = 1; opts.signal?.aborted !== true; attempt++) {
    yield { attempt, delayMs };
    await sleep(delayMs, opts.signal);
    delayMs = Math.min(delayMs * 2, opts.maxMs);
  }
}
