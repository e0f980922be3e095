/**
 * The one sleep outside workflows (workflows use Temporal's `sleep`): `node:timers/promises`,
 * cut short when `signal` aborts. It resolves then too, never rejects: callers check the signal.
 */
import { setTimeout as wait } from 'node:timers/promises';

export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal === undefined) return wait(ms);
  try {
    await wait(ms, undefined, { signal });
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}
