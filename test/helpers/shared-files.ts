/**
 * Files that tasks write outside their workspace, for a test to read. On a root runner each
 * process-driver task runs as a user of its own (`src/runner/task-user.ts`), so:
 * - a folder from `mkdtemp` (0700, the test's) is out of a task's reach, even to test a path in it;
 * - a file one task creates (0644, its own) cannot be appended to by the next task, another user;
 * - with `fs.protected_regular`, a task cannot open with O_CREAT (`>>`) a file in a sticky folder
 *   owned by another task user, whatever its mode.
 * Either way a second run of a task would fail to write, and a count that should catch it would
 * pass. Hence a sticky world-writable folder of the test's user (as `/tmp`), and files made in it
 * beforehand by the test, mode 0666: owned by the folder's owner, every task user appends to them.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A new folder every task user can create files in, search and read, and nobody can remove others' files from. */
export function sharedDir(prefix = 'runfleet-shared-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o1777);
  return dir;
}

/**
 * An empty file `name` in `dir` (a `sharedDir()`, or the harness's `dataDir`, also 1777) that any
 * task user may append to. A file that exists already is an error: a count starts from nothing.
 */
export function sharedFile(dir: string, name: string): string {
  const mode = statSync(dir).mode & 0o7777;
  if (mode !== 0o1777)
    throw new Error(`${dir} is mode ${mode.toString(8)}, not 1777: tasks of other users cannot reach files in it`);
  const file = join(dir, name);
  writeFileSync(file, '', { flag: 'wx' });
  chmodSync(file, 0o666); // writeFileSync's mode passes through the umask
  return file;
}

/** The lines a task wrote to `file` (none when it does not exist yet). */
export function fileLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}
