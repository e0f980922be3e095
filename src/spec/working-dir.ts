/**
 * A task's `working_dir`: a path relative to the task's workspace that stays inside it. Checked
 * on the text alone, so the run workflow can validate it too (sandbox-safe: no `node:path`); the
 * runner checks again against the disk, symlinks resolved (`src/runner/workspace.ts`).
 */

/**
 * Why `value` is not a working directory inside the workspace, or null when it is one: absolute
 * paths, a NUL, and `..` that climbs above the workspace once `.` and `a/..` are folded away.
 */
export function workingDirProblem(value: string): string | null {
  if (value.includes('\0')) return 'must not contain a NUL character';
  if (value.startsWith('/')) {
    return `"${value}" is absolute; working_dir is relative to the task's workspace`;
  }
  if (normalizeWorkingDir(value) === null) return `"${value}" leaves the task's workspace`;
  return null;
}

/**
 * `value` as segments below the workspace (`a/./b/../c` -> `['a', 'c']`, `.` -> `[]`), or null when
 * it climbs out of it. Backslashes count as separators: a Windows-minded `..\..` is refused too.
 */
export function normalizeWorkingDir(value: string): string[] | null {
  const segments: string[] = [];
  for (const part of value.split(/[/\\]/)) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (segments.length === 0) return null;
      segments.pop();
    } else {
      segments.push(part);
    }
  }
  return segments;
}
