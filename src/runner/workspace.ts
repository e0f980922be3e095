/**
 * A task's working directory on the runner's disk: `working_dir` below the task's workspace,
 * checked again here (a run started with `temporal workflow start` skips the client, and the
 * workspace may hold symlinks a previous attempt left). Every existing part of the path is
 * resolved, symlinks included, and must stay inside the workspace before anything is created.
 */
import { mkdirSync, realpathSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { RunfleetError } from '../errors';
import { normalizeWorkingDir, workingDirProblem } from '../spec/working-dir';

/**
 * The absolute working directory of a task whose workspace is `workspace` (created when missing)
 * and whose run file says `workingDir`; created too. Throws `TaskRefused` naming the field when it
 * is absolute, holds a NUL, climbs out with `..`, or reaches outside through a symlink.
 */
export function resolveWorkingDir(workspace: string, workingDir: string | undefined): string {
  mkdirSync(workspace, { recursive: true });
  if (workingDir === undefined) return workspace;
  const shown = printable(workingDir);
  const problem = workingDirProblem(workingDir);
  const segments = normalizeWorkingDir(workingDir);
  if (problem !== null || segments === null) {
    throw new RunfleetError(
      'TaskRefused',
      `working_dir "${shown}" refused: ${problem ?? "it leaves the task's workspace"}`,
    );
  }
  const root = realpathSync(workspace);
  // One segment at a time, so a symlink is followed (and judged) before anything is made below it.
  let dir = root;
  for (const segment of segments) {
    let real: string;
    try {
      mkdirSync(join(dir, segment), { recursive: true });
      real = realpathSync(join(dir, segment));
    } catch (err) {
      // A file where a directory should be, a dangling link: the task's own doing, not the runner's.
      throw new RunfleetError('TaskRefused', `working_dir "${shown}" cannot be made: ${(err as Error).message}`);
    }
    if (!inside(root, real)) {
      throw new RunfleetError(
        'TaskRefused',
        `working_dir "${shown}" refused: "${printable(segment)}" is a link out of the task's workspace (to ${real})`,
      );
    }
    dir = real;
  }
  // Under the workspace path as given (which may itself go through links), not its real path.
  return join(workspace, relative(root, dir));
}

/** Whether `path` is `root` or below it (both real, absolute paths). */
export function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep));
}

/** Control characters (a NUL, an escape) as `\xNN`: the value reaches logs and terminals. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
