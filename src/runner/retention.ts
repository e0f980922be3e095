/**
 * Task files on a runner (logs and workspaces, one folder per run) follow a retention setting:
 * a run's folders go once nothing in them changed for that long and no task of the run runs
 * here. Finished runs stay queryable in Temporal for the namespace's retention; their logs stay
 * on the runner for this one.
 *
 * Workspaces hold whatever tasks left there, symlinks included: the sweep never follows one (a
 * link counts by its own time and is removed as a link), and a folder it cannot read or remove
 * is skipped, so one bad folder never stops the sweep of the others.
 */
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface SweepOptions {
  dataDir: string;
  retentionMs: number;
  now?: number;
  /** True when a task of this run (its folder name) is running on the runner. */
  isActive(runFolder: string): boolean;
  /** Told of a folder the sweep could not look at or remove (it tries again next time). */
  onError?(path: string, err: Error): void;
}

/** Removes expired run folders under `logs/` and `work/`; returns the folders removed. */
export function sweepTaskFiles(opts: SweepOptions): string[] {
  const now = opts.now ?? Date.now();
  const removed: string[] = [];
  for (const area of ['logs', 'work']) {
    const root = join(opts.dataDir, area);
    let entries: string[];
    try {
      entries = readdirSync(root);
    } catch {
      continue; // nothing ran here yet
    }
    for (const run of entries) {
      if (opts.isActive(run)) continue;
      const dir = join(root, run);
      try {
        if (now - newestMtime(dir) < opts.retentionMs) continue;
        // Removes links as links: nothing outside the folder is touched.
        rmSync(dir, { recursive: true, force: true });
        removed.push(join(area, run));
      } catch (err) {
        opts.onError?.(dir, err as Error);
      }
    }
  }
  return removed;
}

/** The newest modification time in a folder tree (a log still written to keeps its run), links not followed. */
function newestMtime(path: string): number {
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  let newest = stat.mtimeMs;
  if (stat.isDirectory()) {
    for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  }
  return newest;
}
