/**
 * The baselines' activities: a pure no-op, and one that pays the same per-task process cost as a
 * Runfleet task (`/bin/sh -c true` in its own process group, like the runner's process driver).
 */
import { spawn } from 'node:child_process';

export interface BaselineActivities {
  /** Returns its start time (ms since epoch). */
  noop(): Promise<number>;
  /** Spawns `/bin/sh -c true` and waits for it to exit; returns [start time, ms the process took]. */
  spawnTrue(): Promise<[number, number]>;
}

export const baselineActivities: BaselineActivities = {
  async noop() {
    return Date.now();
  },
  async spawnTrue() {
    const startedAt = Date.now();
    await new Promise<void>((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', 'true'], { detached: true, stdio: 'ignore' });
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        code === 0 ? resolve() : reject(new Error(`/bin/sh -c true exited ${code ?? signal}`)),
      );
    });
    return [startedAt, Date.now() - startedAt];
  },
};
