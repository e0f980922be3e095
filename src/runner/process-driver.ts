/**
 * The `process` driver: each step runs through `/bin/sh -c` in its own process group, with
 * stdout and stderr appended to the task's log file. Cancel or timeout kills the whole group
 * (TERM, then KILL after a grace period); anything a step left behind in its group is killed
 * when the task ends.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';

export interface DriverRun {
  steps: { name?: string; run: string }[];
  cwd: string;
  env: Record<string, string>;
  logFile: string;
  signal: AbortSignal;
}

export interface DriverResult {
  exitCode: number;
  failedStep: number | null;
  /** True when the run was stopped through `signal`. */
  aborted: boolean;
}

export interface Driver {
  readonly name: string;
  run(req: DriverRun): Promise<DriverResult>;
}

/** How long a TERM-ed process group gets before KILL. */
const KILL_GRACE_MS = 5_000;

export function createProcessDriver(opts: { shell?: string } = {}): Driver {
  const shell = opts.shell ?? '/bin/sh';
  return {
    name: 'process',
    async run(req) {
      mkdirSync(req.cwd, { recursive: true });
      const fd = openSync(req.logFile, 'a');
      const groups: number[] = [];
      try {
        for (let i = 0; i < req.steps.length; i++) {
          if (req.signal.aborted) return { exitCode: 130, failedStep: i, aborted: true };
          const step = req.steps[i] as { name?: string; run: string };
          writeSync(fd, `==> step ${i + 1}/${req.steps.length}${step.name ? ` (${step.name})` : ''}: ${step.run}\n`);
          const exitCode = await runStep(shell, step.run, req, fd, groups);
          writeSync(fd, `==> step ${i + 1} exited with code ${exitCode}\n`);
          if (req.signal.aborted) return { exitCode, failedStep: i, aborted: true };
          if (exitCode !== 0) return { exitCode, failedStep: i, aborted: false };
        }
        return { exitCode: 0, failedStep: null, aborted: false };
      } finally {
        for (const pgid of groups) killGroup(pgid, 'SIGKILL');
        closeSync(fd);
      }
    },
  };
}

function runStep(shell: string, command: string, req: DriverRun, fd: number, groups: number[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(shell, ['-c', command], {
      cwd: req.cwd,
      env: req.env,
      detached: true, // its own process group, so a kill reaches every process of the step
      stdio: ['ignore', fd, fd],
    });
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      if (child.pid === undefined) return;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => child.pid !== undefined && killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
    };
    if (child.pid !== undefined) groups.push(child.pid);
    req.signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      req.signal.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      req.signal.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      resolve(code ?? 128 + signalNumber(signal));
    });
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGKILL: 9,
    SIGTERM: 15,
  };
  return (signal && numbers[signal]) ?? 1;
}
