/**
 * A runner in the background: `runfleet runner serve` started detached, its output appended to
 * `<state dir>/runner.log`, its pid in `<state dir>/runner.pid`. Start, stop and the log tail.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
  fstatSync,
} from 'node:fs';
import { join } from 'node:path';
import { RunfleetError } from '../errors';
import { sleep } from '../sleep';

export const PID_FILE = 'runner.pid';
export const LOG_FILE = 'runner.log';

/** The line `runner serve` logs once it serves (after a time prefix, when there is one). */
export const SERVING_LINE = /^(?:\d\d:\d\d:\d\d )?runner \S+ .*\b(serving|registered)\b/m;

/** A runner connects and builds its workers in seconds; a busy 2-core machine may take 30. */
const DEFAULT_START_TIMEOUT_MS = 60_000;
/** `serve` drains running tasks on SIGTERM; most finish or give up within this. */
export const DEFAULT_STOP_TIMEOUT_MS = 30_000;
const POLL_MS = 100;

export function pidFile(stateDir: string): string {
  return join(stateDir, PID_FILE);
}

export function logFile(stateDir: string): string {
  return join(stateDir, LOG_FILE);
}

/** The pid in a pid file; null when there is no file or it holds no pid. */
export function readPid(stateDir: string): number | null {
  let text: string;
  try {
    text = readFileSync(pidFile(stateDir), 'utf8');
  } catch {
    return null;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/**
 * True when the process runs: it exists, is not a zombie (a container's pid 1 may never reap
 * it) and, where /proc tells, runs `runner serve` (the pid was not reused by something else).
 */
export function isRunnerProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const proc = `/proc/${pid}`;
  if (!existsSync(proc)) return true;
  try {
    const stat = readFileSync(`${proc}/stat`, 'utf8');
    // The state follows the command name in parentheses, which may itself hold ") ".
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    const cmdline = readFileSync(`${proc}/cmdline`, 'utf8').split('\0');
    return cmdline.includes('runner') && cmdline.includes('serve');
  } catch {
    // Gone between the checks.
    return false;
  }
}

export type DaemonStatus = { running: true; pid: number } | { running: false; stalePid: number | null };

export function daemonStatus(stateDir: string): DaemonStatus {
  const pid = readPid(stateDir);
  if (pid !== null && isRunnerProcess(pid)) return { running: true, pid };
  return { running: false, stalePid: pid ?? (existsSync(pidFile(stateDir)) ? 0 : null) };
}

export interface StartOptions {
  /** Runner name, for messages. */
  name: string;
  stateDir: string;
  /** The node binary and the `runfleet` script: the same CLI, in the background. */
  execPath: string;
  bin: string;
  /** Arguments after the script (`--address X runner serve --name N ...`). */
  args: string[];
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** When set, a 200 from `/readyz` on this port also means up. */
  healthPort?: number;
  /** Default 60 s. */
  timeoutMs?: number;
  /** Notes for the user (a stale pid file replaced). */
  onNote?: (text: string) => void;
}

export interface Started {
  pid: number;
  logFile: string;
  pidFile: string;
}

/**
 * Starts `runner serve` detached and waits until it serves. A live runner with this state
 * directory is `InvalidState`; a process that exits first is `ComponentUnavailable` with the
 * tail of its log.
 */
export async function startDaemon(o: StartOptions): Promise<Started> {
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  const pidPath = pidFile(o.stateDir);
  const logPath = logFile(o.stateDir);
  const before = daemonStatus(o.stateDir);
  if (before.running) throw alreadyRunning(o.name, before.pid);
  if (before.stalePid !== null) {
    o.onNote?.(
      `removing stale pid file ${pidPath}${before.stalePid ? ` (pid ${before.stalePid} is not running)` : ''}`,
    );
    rmSync(pidPath, { force: true });
  }

  const logFd = openSync(logPath, 'a', 0o600);
  const offset = fstatSync(logFd).size;
  let child;
  try {
    writeFileSync(logFd, `--- ${new Date().toISOString()} runfleet runner start (${o.name})\n`);
    child = spawn(o.execPath, [o.bin, ...o.args], {
      cwd: o.cwd,
      env: o.env as NodeJS.ProcessEnv,
      // Its own session: a Ctrl-C in the terminal that started it does not reach it.
      detached: true,
      stdio: ['ignore', logFd, logFd],
    });
  } finally {
    closeSync(logFd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    throw new RunfleetError('ComponentUnavailable', `cannot start runner ${o.name}: ${o.execPath} did not start`);
  }
  let exitCode: number | null = null;
  child.once('exit', (code, signal) => {
    exitCode = code ?? (signal ? 128 : 1);
  });
  child.unref();

  try {
    writePidExclusive(pidPath, pid);
  } catch (err) {
    // Another `start` won the race: it owns the state directory.
    child.kill('SIGKILL');
    const other = readPid(o.stateDir);
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && other !== null) throw alreadyRunning(o.name, other);
    throw err;
  }

  const deadline = Date.now() + (o.timeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  for (;;) {
    if (exitCode !== null) {
      rmSync(pidPath, { force: true });
      throw new RunfleetError(
        'ComponentUnavailable',
        `runner ${o.name} exited with code ${String(exitCode)} before it served; the end of ${logPath}:\n${indent(tailText(logPath, 20, offset))}`,
      );
    }
    if (SERVING_LINE.test(readFrom(logPath, offset))) break;
    if (o.healthPort !== undefined && o.healthPort > 0 && (await ready(o.healthPort))) break;
    if (Date.now() > deadline) {
      throw new RunfleetError(
        'ComponentUnavailable',
        `runner ${o.name} (pid ${pid}) does not serve after ${Math.round((o.timeoutMs ?? DEFAULT_START_TIMEOUT_MS) / 1000)}s; it still runs (stop it with \`runfleet runner stop\`); the end of ${logPath}:\n${indent(tailText(logPath, 20, offset))}`,
      );
    }
    await sleep(POLL_MS);
  }
  return { pid, logFile: logPath, pidFile: pidPath };
}

export interface StopOptions {
  stateDir: string;
  /** Default 30 s. */
  timeoutMs?: number;
  onNote?: (text: string) => void;
}

export type Stopped = { wasRunning: false } | { wasRunning: true; pid: number; killed: boolean };

/** SIGTERM, then SIGKILL after the timeout; the pid file is removed either way. */
export async function stopDaemon(o: StopOptions): Promise<Stopped> {
  const status = daemonStatus(o.stateDir);
  if (!status.running) {
    rmSync(pidFile(o.stateDir), { force: true });
    return { wasRunning: false };
  }
  const { pid } = status;
  signal(pid, 'SIGTERM');
  const timeoutMs = o.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let killed = false;
  while (isRunnerProcess(pid)) {
    if (Date.now() > deadline) {
      o.onNote?.(`runner (pid ${pid}) still running after ${timeoutMs / 1000}s: killing it (SIGKILL)`);
      signal(pid, 'SIGKILL');
      killed = true;
      while (isRunnerProcess(pid)) await sleep(POLL_MS);
      break;
    }
    await sleep(POLL_MS);
  }
  rmSync(pidFile(o.stateDir), { force: true });
  return { wasRunning: true, pid, killed };
}

/** The last `lines` lines of a file from byte `from` on ('' when there is no file). */
export function tailText(file: string, lines: number, from = 0, to?: number): string {
  const text = readFrom(file, from, 1024 * 1024, to);
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  return all.slice(Math.max(0, all.length - lines)).join('\n');
}

export interface FollowOptions {
  lines: number;
  write: (chunk: string) => void;
  signal: AbortSignal;
  /** How often the file is checked for more. Default 250 ms. */
  intervalMs?: number;
}

/** Prints the last lines, then whatever is appended, like `tail -f`, until the signal aborts. */
export async function followLog(file: string, o: FollowOptions): Promise<void> {
  // The end is taken before the tail is printed, and the tail stops there: a line appended once
  // the tail is out (a reader may act on it at once) is printed, never skipped.
  let offset = size(file);
  const first = tailText(file, o.lines, 0, offset);
  if (first) o.write(first + '\n');
  while (!o.signal.aborted) {
    await sleep(o.intervalMs ?? 250, o.signal);
    const now = size(file);
    // Truncated or replaced: start again from its beginning.
    if (now < offset) offset = 0;
    if (now > offset) {
      o.write(readFrom(file, offset, now - offset));
      offset = now;
    }
  }
}

/** Bytes `from` (or the last `max` of them) up to `to`, default the file's end. */
function readFrom(file: string, from: number, max = 4 * 1024 * 1024, to?: number): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const total = Math.min(fstatSync(fd).size, to ?? Number.POSITIVE_INFINITY);
    // Only the end matters when the file is bigger than `max`.
    const start = Math.max(from, total - max);
    const length = Math.max(0, total - start);
    const buf = Buffer.alloc(length);
    const n = readSync(fd, buf, 0, length, start);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function size(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** Writes the pid file atomically and only if none exists (link fails on an existing name). */
function writePidExclusive(path: string, pid: number): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
  try {
    linkSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

async function ready(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1_000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

function alreadyRunning(name: string, pid: number): RunfleetError {
  return new RunfleetError('InvalidState', `runner ${name} already running (pid ${pid})`);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
