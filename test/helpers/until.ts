/**
 * The one polling helper of the tests (and benchmarks): asks `check` every `everyMs` until it
 * returns a value, and returns that value. Not yet: `undefined`, `null`, `false`, or a throw (an
 * `expect` that fails, a server not answering yet). At the timeout it throws an error that names
 * what it waited for, with the last throw and `detail()` (a process's output, say), so a failing
 * test says why.
 */
import { sleep } from '../../src/sleep';

export interface UntilOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  /** Default 200 ms. */
  everyMs?: number;
  /** Added to the timeout's error: what the test knows that helps explain it. */
  detail?: () => string;
}

type NotYet = undefined | null | false;

export async function until<T>(
  what: string,
  check: () => T | NotYet | Promise<T | NotYet>,
  options: UntilOptions | number = {},
): Promise<T> {
  const { timeoutMs = 30_000, everyMs = 200, detail } = typeof options === 'number' ? { timeoutMs: options } : options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = undefined;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const last = lastError === undefined ? '' : `; last error: ${String((lastError as Error)?.message ?? lastError)}`;
      const more = detail ? `\n${detail()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}${more}`);
    }
    await sleep(Math.min(everyMs, Math.max(0, deadline - Date.now())));
  }
}

/**
 * `until` for a value read again and again: returns it once `ok(value)`. The timeout's error shows
 * the last value read (JSON), so a caller keeps no state of its own for it.
 */
export async function untilRead<T>(
  what: string,
  read: () => T | Promise<T>,
  ok: (value: T) => boolean,
  options: UntilOptions | number = {},
): Promise<T> {
  const opts = typeof options === 'number' ? { timeoutMs: options } : options;
  let last: { value: T } | undefined;
  const found = await until(
    what,
    async () => {
      const value = await read();
      last = { value };
      return ok(value) ? { value } : false;
    },
    {
      ...opts,
      detail: () =>
        [`last read: ${last === undefined ? '(nothing yet)' : JSON.stringify(last.value)}`, opts.detail?.()]
          .filter(Boolean)
          .join('\n'),
    },
  );
  return found.value;
}
