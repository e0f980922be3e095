/**
 * Task files on a runner (logs and workspaces, one folder per run) follow a retention setting:
 * a run's folders go once nothing in them changed for that long and no task of the run runs
 * here. Finished runs stay queryable in Temporal for the namespace's retention; their logs stay
 * on the runner for this one.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface SweepOptions {
  dataDir: string;
  retentionMs: number;
  now?: number;
  /** True when a task of this run (its folder name) is running on the runner. */
  isActive(runFolder: string): boolean;
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
      if (now - newestMtime(dir) < opts.retentionMs) continue;
      rmSync(dir, { recursive: true, force: true });
      removed.push(join(area, run));
    }
  }
  return removed;
}

/** The newest modification time in a folder tree (a log still written to keeps its run). */
function newestMtime(path: string): number {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  let newest = stat.mtimeMs;
  if (stat.isDirectory()) {
    for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  }
  return newest;
}
