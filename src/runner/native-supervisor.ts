/**
 * The process driver's native supervisor (`native/supervise.c`): where the build puts it, how it
 * is built, and whether this runner can use it.
 *
 * It replaces the generated shell script as the supervisor of a process-driver task and switches
 * to the task's user itself: one small static program instead of a shell and `setpriv`, the most
 * of what a one-step task cost in processes (bench/README.md, "Task processes"). Everything else
 * is the same: the session dir's files, the log's step lines, recovery after a runner's kill.
 *
 * `scripts/setup` and `npm run build` compile it with the machine's C compiler into
 * `dist/native/` (shipped in the package). A runner without it (no compiler where it was built,
 * another architecture, an older build) uses the shell script and says why, once.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { packageRoot } from '../package-root';

export const NATIVE_SUPERVISOR_NAME = 'runfleet-supervise';
/** The protocol version this code speaks (`VERSION` in native/supervise.c). */
export const NATIVE_SUPERVISOR_VERSION = 2;

/** Where the build puts the supervisor. */
export function nativeSupervisorPath(root = packageRoot(__dirname)): string {
  return join(root, 'dist', 'native', NATIVE_SUPERVISOR_NAME);
}

export type NativeSupervisor = { path: string } | { path: null; why: string };

/** The supervisor at `path` when it runs here and speaks this version; else why not. */
export function probeNativeSupervisor(path = nativeSupervisorPath()): NativeSupervisor {
  if (!existsSync(path)) return { path: null, why: `${path} is not built (scripts/setup or npm run build builds it)` };
  const probe = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 5_000, env: {} });
  if (probe.error) return { path: null, why: `${path} does not run here: ${probe.error.message}` };
  const expected = `${NATIVE_SUPERVISOR_NAME} ${NATIVE_SUPERVISOR_VERSION}`;
  if (probe.status !== 0 || probe.stdout.trim() !== expected)
    return {
      path: null,
      why: `${path} answered ${JSON.stringify(probe.stdout.trim())}, not "${expected}": rebuild it`,
    };
  return { path };
}

/**
 * Compiles `native/supervise.c` into `out` with `cc` (static when the C library allows it, so it
 * runs in any container of this architecture). Null when built, else why not.
 */
export function buildNativeSupervisor(root = packageRoot(__dirname), out = nativeSupervisorPath(root)): string | null {
  const source = join(root, 'native', 'supervise.c');
  if (!existsSync(source)) return `${source} is missing`;
  const cc = process.env.CC ?? 'cc';
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const flags = ['-O2', '-Wall', '-Wextra', '-Werror', '-o', tmp, source];
  let why = '';
  for (const link of [['-static'], []]) {
    const r = spawnSync(cc, [...link, ...flags], { encoding: 'utf8' });
    if (r.error) return `no C compiler (${cc}: ${r.error.message})`;
    if (r.status === 0) {
      renameSync(tmp, out);
      return null;
    }
    why = `${cc} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`;
  }
  rmSync(tmp, { force: true });
  return why;
}
