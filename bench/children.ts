/**
 * The benchmark's worker processes (Runfleet runners, baseline activity workers): started as
 * children of the bench process, their output in a log file (so the bench process spends nothing
 * on it), their peak RSS read from `/proc/<pid>/status` (VmHWM), and stopped with SIGTERM, then
 * SIGKILL after a grace period. Every live child is also killed when the bench process exits,
 * whatever the reason.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/** SIGTERM first; SIGKILL when the child has not exited after this long. */
export const KILL_GRACE_MS = 5_000;

const live = new Set<BenchChild>();

export interface ChildOptions {
  /** For messages: `runner rf-...-r0`. */
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** stdout and stderr of the child, appended. */
  logFile: string;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class BenchChild {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  private readonly proc: ChildProcess;
  private exit: ChildExit | undefined;
  private stopping = false;
  private lastPeakBytes = 0;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ChildExit>;

  constructor(opts: ChildOptions) {
    this.name = opts.name;
    this.logFile = opts.logFile;
    const fd = openSync(opts.logFile, 'a');
    try {
      // stdin: a pipe the child may watch (it closes when this process dies, however it dies).
      this.proc = spawn(opts.command, opts.args, { cwd: opts.cwd, env: opts.env, stdio: ['pipe', fd, fd] });
    } finally {
      closeSync(fd);
    }
    this.exited = new Promise<ChildExit>((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        resolve(this.exit);
      });
      this.proc.once('error', (err) => {
        if (this.exit) return;
        this.exit = { code: null, signal: null };
        live.delete(this);
        console.error(`bench: ${this.name}: ${err.message}`);
        resolve(this.exit);
      });
    });
    if (this.proc.pid === undefined) throw new Error(`${this.name}: could not start ${opts.command}`);
    this.pid = this.proc.pid;
    this.proc.stdin?.on('error', () => undefined);
    live.add(this);
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /**
   * Rejects when the child exits before `stop()` is called (never resolves otherwise): for a race
   * against the workflow's result.
   */
  unexpectedExit(): Promise<never> {
    const p = this.exited.then((e) => {
      if (this.stopping) return new Promise<never>(() => undefined);
      throw new Error(`${this.name} (pid ${this.pid}) exited ${describeExit(e)}\n${this.tail()}`);
    });
    // Handled here too: the child may die while nobody awaits this yet (startup, settling).
    p.catch(() => undefined);
    return p;
  }

  /** The last lines of the child's output, indented, for an error message. */
  tail(lines = 15): string {
    try {
      const text = readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines);
      return text.map((l) => `    | ${l}`).join('\n');
    } catch {
      return '    (no output)';
    }
  }

  /** The first match of `re` in the child's output; fails when the child exits or after `timeoutMs`. */
  async waitForOutput(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let text = '';
      try {
        text = readFileSync(this.logFile, 'utf8');
      } catch {
        // not written yet
      }
      const m = text.match(re);
      if (m) return m;
      if (this.exit)
        throw new Error(`${this.name} exited ${describeExit(this.exit)} before it was ready\n${this.tail()}`);
      if (Date.now() > deadline) {
        throw new Error(`${this.name} not ready within ${timeoutMs / 1000} s (waiting for ${re})\n${this.tail()}`);
      }
      await sleep(50);
    }
  }

  /** Peak resident set (VmHWM) so far, in bytes; the last value read once the process is gone. */
  peakRssBytes(): number {
    if (this.exit) return this.lastPeakBytes;
    try {
      const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      if (m) this.lastPeakBytes = Number(m[1]) * 1024;
    } catch {
      // exited meanwhile, or no /proc: keep the last reading
    }
    return this.lastPeakBytes;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs = KILL_GRACE_MS): Promise<ChildExit> {
    this.stopping = true;
    if (this.exit) return this.exit;
    this.peakRssBytes();
    this.proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (!this.exit) {
          console.error(
            `bench: ${this.name} (pid ${this.pid}) still running ${graceMs / 1000} s after SIGTERM: SIGKILL`,
          );
          this.proc.kill('SIGKILL');
        }
        resolve();
      }, graceMs);
    });
    const exit = await Promise.race([this.exited, killed.then(() => this.exited)]);
    clearTimeout(timer);
    return exit;
  }

  /** SIGKILL now, without waiting (for the process's exit handler). */
  killNow(): void {
    if (this.exit) return;
    try {
      this.proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Stops every live child (SIGTERM, SIGKILL after the grace period), all at once. */
export async function stopAllChildren(graceMs = KILL_GRACE_MS): Promise<void> {
  await Promise.all([...live].map((c) => c.stop(graceMs)));
}

export function liveChildren(): number {
  return live.size;
}

// Last resort: whatever ends this process (an error, process.exit, a second Ctrl-C) kills the children.
process.on('exit', () => {
  for (const c of live) c.killNow();
});

export function describeExit(e: ChildExit): string {
  return e.signal ? `on ${e.signal}` : `with code ${e.code}`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
