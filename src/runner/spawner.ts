/**
 * Starts the process driver's supervisors from a small helper process rather than from the runner
 * itself. Starting a process forks its parent: the kernel copies the parent's page tables, and the
 * parent waits while the child tears its copy down again to exec. The runner maps hundreds of MiB
 * (Temporal's core, the SDK, its own code), so each start cost it several milliseconds of its
 * event loop, the most of any one thing it did per task (`bench/run.ts`, a CPU profile of the
 * runner: half its busy time). The helper is a bare `node` with a few dozen lines of code: a
 * start costs it a fraction of that, and the runner's event loop goes on meanwhile.
 *
 * The helper is the supervisors' parent: it starts each one detached (its own session and process
 * group, as before), reports its pid, and reports its exit. Nothing of a task depends on it: a
 * supervisor records its outcome in its session dir and outlives the helper as it outlives the
 * runner. If the helper dies, the supervisors it started are watched by pid until they are gone
 * (their exit status is lost with it; their exit files say how they ended), and the next start
 * makes a new helper. The helper ends when the runner does (its stdin closes).
 *
 * Messages are JSON lines: to the helper `{id, command, args, cwd, env, logFile}`; from it
 * `{id, pid}`, then `{id, code, signal}` when the process exits, or `{id, error, errno}` when it
 * could not start. The task's environment (its secrets too) goes through the pipe between the two,
 * which no other user can open.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { isAlive } from '../process-alive';
import { sleep } from '../sleep';

/** The helper's code: plain CommonJS for `node -e`, so it runs the same from sources and from the build. */
const HELPER_SOURCE = `'use strict';
const { spawn } = require('node:child_process');
const { openSync, closeSync } = require('node:fs');
const send = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buffered += d;
  for (let i = buffered.indexOf('\\n'); i >= 0; i = buffered.indexOf('\\n')) {
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    start(JSON.parse(line));
  }
});
process.stdin.on('end', () => process.exit(0));
function start(r) {
  let fd;
  try {
    fd = openSync(r.logFile, 'a', 0o600);
    const child = spawn(r.command, r.args, { cwd: r.cwd, env: r.env, detached: true, stdio: ['ignore', fd, fd] });
    let started = false;
    child.once('error', (e) => { if (!started) send({ id: r.id, error: e.message, errno: e.code }); });
    if (child.pid === undefined) return;
    started = true;
    send({ id: r.id, pid: child.pid });
    child.once('exit', (code, signal) => send({ id: r.id, code, signal }));
  } catch (e) {
    send({ id: r.id, error: e.message, errno: e.code });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
`;

/**
 * The `code` of the error a start gets when the helper died before answering it: whether the
 * process was started is not known (the process driver settles it: `unanswered`).
 */
export const STARTER_GONE = 'RUNFLEET_STARTER_GONE';

/** How often a supervisor is looked for once the helper that would report its exit is gone. */
const ORPHAN_POLL_MS = 100;

export interface SpawnRequest {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** stdout and stderr are appended to it (created 0600). */
  logFile: string;
}

export interface ProcessExit {
  /** Null when it died of a signal, or when the helper that would have said died first. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Spawned {
  pid: number;
  exit: Promise<ProcessExit>;
}

export interface Spawner {
  /**
   * Starts a detached process; rejects with its `errno` as `code` (ENOENT...) when it cannot, or
   * with `STARTER_GONE` when the helper died before it answered (started or not: not known).
   */
  spawn(req: SpawnRequest): Promise<Spawned>;
  /** The helper's pid while it runs (tests kill it). */
  helperPid(): number | undefined;
}

interface Pending {
  started: (pid: number) => void;
  failed: (err: Error) => void;
  exited: (exit: ProcessExit) => void;
  /** Known once the helper has answered. */
  pid?: number;
}

type Helper = ChildProcessByStdio<Writable, Readable, null>;

export function createSpawner(): Spawner {
  let helper: Helper | null = null;
  let nextId = 1;
  const pending = new Map<number, Pending>();

  /** The helper keeps the runner alive only while something of it is pending. */
  const holdOpen = () => {
    if (!helper) return;
    if (pending.size > 0) {
      helper.ref();
      (helper.stdout as Socket).ref();
    } else {
      helper.unref();
      (helper.stdout as Socket).unref();
    }
  };

  const onMessage = (m: {
    id: number;
    pid?: number;
    code?: number | null;
    signal?: NodeJS.Signals | null;
    error?: string;
    errno?: string;
  }) => {
    const p = pending.get(m.id);
    if (!p) return;
    if (m.error !== undefined) {
      pending.delete(m.id);
      p.failed(Object.assign(new Error(m.error), { code: m.errno }));
    } else if (m.pid !== undefined) {
      p.pid = m.pid;
      p.started(m.pid);
    } else {
      pending.delete(m.id);
      p.exited({ code: m.code ?? null, signal: m.signal ?? null });
    }
    holdOpen();
  };

  const onGone = (gone: Helper, why: string) => {
    if (helper !== gone) return;
    helper = null;
    for (const [id, p] of pending) {
      pending.delete(id);
      if (p.pid === undefined)
        p.failed(
          Object.assign(new Error(`the process starter ended (${why}) before it answered`), { code: STARTER_GONE }),
        );
      else void watchUntilGone(p.pid).then(() => p.exited({ code: null, signal: null }));
    }
  };

  const startHelper = (): Helper => {
    // No environment of the runner's: the helper needs none, and NODE_OPTIONS would load into it.
    const child = spawn(process.execPath, ['-e', HELPER_SOURCE], { stdio: ['pipe', 'pipe', 'inherit'], env: {} });
    let lines = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      lines += d;
      for (let i = lines.indexOf('\n'); i >= 0; i = lines.indexOf('\n')) {
        const line = lines.slice(0, i);
        lines = lines.slice(i + 1);
        onMessage(JSON.parse(line) as Parameters<typeof onMessage>[0]);
      }
    });
    child.stdin.on('error', () => undefined); // a write to a helper that died: its exit says so
    child.once('error', (err) => onGone(child, err.message));
    child.once('exit', (code, signal) => onGone(child, signal ?? `exit code ${String(code)}`));
    return child;
  };

  return {
    spawn(req) {
      helper ??= startHelper();
      const id = nextId++;
      let exited: Pending['exited'] = () => undefined;
      const exit = new Promise<ProcessExit>((resolve) => (exited = resolve));
      const started = new Promise<number>((resolve, reject) =>
        pending.set(id, { started: resolve, failed: reject, exited }),
      );
      holdOpen();
      helper.stdin.write(`${JSON.stringify({ id, ...req })}\n`);
      return started.then((pid) => ({ pid, exit }));
    },
    helperPid: () => helper?.pid,
  };
}

/** Resolves once `pid` has exited (a zombie counts: its new parent may never reap it). */
async function watchUntilGone(pid: number): Promise<void> {
  while (isAlive(pid)) await sleep(ORPHAN_POLL_MS);
}
