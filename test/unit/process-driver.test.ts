/** The process driver on the real /bin/sh: order, cwd, env, logs, failures, abort of the whole group. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProcessDriver, type DriverRun } from '../../src/runner/process-driver';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'runfleet-driver-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const driver = createProcessDriver();
const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

function req(steps: DriverRun['steps'], extra: Partial<DriverRun> = {}): DriverRun {
  return {
    steps,
    cwd: join(dir, 'ws'),
    env: baseEnv,
    logFile: join(dir, 'task.log'),
    signal: new AbortController().signal,
    ...extra,
  };
}

const log = () => readFileSync(join(dir, 'task.log'), 'utf8');

/**
 * True while `pid` exists and has not exited. A killed child whose shell died is re-parented and
 * stays a zombie until PID 1 reaps it (seconds in some containers); signal 0 still reaches a
 * zombie, so on Linux its state in /proc tells "exited, not yet reaped" apart.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ...": the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return process.platform !== 'linux';
  }
}

async function waitFor<T>(check: () => T | undefined | null | false, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('process driver', () => {
  it('is named process', () => {
    expect(driver.name).toBe('process');
  });

  it('runs steps in order, in cwd (created), with exactly the given env', async () => {
    const result = await driver.run(
      req(
        [
          { run: 'echo one > order.txt' },
          { run: 'echo two >> order.txt; pwd > where.txt' },
          { name: 'env', run: 'printf "%s|%s|%s" "$GREETING" "${HOME-unset}" "$RUNFLEET_TASK" > env.txt' },
        ],
        { env: { ...baseEnv, GREETING: 'hello world', RUNFLEET_TASK: 'build' } },
      ),
    );
    expect(result).toEqual({ exitCode: 0, failedStep: null, aborted: false });
    const ws = join(dir, 'ws');
    expect(readFileSync(join(ws, 'order.txt'), 'utf8')).toBe('one\ntwo\n');
    expect(readFileSync(join(ws, 'where.txt'), 'utf8').trim()).toBe(ws);
    // The driver's own environment (HOME, ...) does not leak into the step.
    expect(readFileSync(join(ws, 'env.txt'), 'utf8')).toBe('hello world|unset|build');
  });

  it('writes stdout and stderr to the log file with step headers, appending', async () => {
    await driver.run(req([{ run: 'echo out' }, { name: 'warn', run: 'echo err >&2' }]));
    expect(log()).toBe(
      [
        '==> step 1/2: echo out',
        'out',
        '==> step 1 exited with code 0',
        '==> step 2/2 (warn): echo err >&2',
        'err',
        '==> step 2 exited with code 0',
        '',
      ].join('\n'),
    );
    await driver.run(req([{ run: 'echo again' }]));
    expect(log()).toMatch(
      /==> step 2 exited with code 0\n==> step 1\/1: echo again\nagain\n==> step 1 exited with code 0\n$/,
    );
  });

  it('a failing step stops the task and reports failedStep and exitCode', async () => {
    const result = await driver.run(
      req([{ run: 'touch first' }, { run: 'echo failing; exit 3' }, { run: 'touch third' }]),
    );
    expect(result).toEqual({ exitCode: 3, failedStep: 1, aborted: false });
    expect(existsSync(join(dir, 'ws', 'first'))).toBe(true);
    expect(existsSync(join(dir, 'ws', 'third'))).toBe(false);
    expect(log()).toContain('==> step 2/3: echo failing; exit 3\nfailing\n==> step 2 exited with code 3\n');
    expect(log()).not.toContain('step 3/3');
  });

  it('a step killed by a signal reports 128 + the signal number', async () => {
    const result = await driver.run(req([{ run: 'kill -KILL $$' }]));
    expect(result).toEqual({ exitCode: 137, failedStep: 0, aborted: false });
  });

  it('a missing command fails with the shell exit code 127', async () => {
    const result = await driver.run(req([{ run: 'runfleet-no-such-command-xyz' }]));
    expect(result).toEqual({ exitCode: 127, failedStep: 0, aborted: false });
  });

  it('abort kills the process group: the shell and a backgrounded child both die', async () => {
    const controller = new AbortController();
    const pidFile = join(dir, 'ws', 'child.pid');
    const started = Date.now();
    const running = driver.run(
      req([{ run: 'sleep 30 & echo $! > child.pid; sleep 30; wait' }, { run: 'touch after-abort' }], {
        signal: controller.signal,
      }),
    );
    const childPid = await waitFor(() => {
      const text = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : '';
      return text ? Number(text) : null;
    });
    expect(alive(childPid)).toBe(true);
    controller.abort();
    const result = await running;
    expect(result).toEqual({ exitCode: 143, failedStep: 0, aborted: true });
    // TERM, not the 5 s KILL grace: quick.
    expect(Date.now() - started).toBeLessThan(4_000);
    await waitFor(() => !alive(childPid), 2_000);
    expect(alive(childPid)).toBe(false);
    expect(existsSync(join(dir, 'ws', 'after-abort'))).toBe(false);
  });

  it('an already aborted signal runs nothing', async () => {
    const controller = new AbortController();
    controller.abort();
    const result = await driver.run(req([{ run: 'touch ran' }], { signal: controller.signal }));
    expect(result).toEqual({ exitCode: 130, failedStep: 0, aborted: true });
    expect(existsSync(join(dir, 'ws', 'ran'))).toBe(false);
  });

  it('kills what a step left running in the background when the task ends', async () => {
    const result = await driver.run(req([{ run: 'sleep 30 & echo $! > bg.pid' }, { run: 'true' }]));
    expect(result.exitCode).toBe(0);
    const pid = Number(readFileSync(join(dir, 'ws', 'bg.pid'), 'utf8').trim());
    await waitFor(() => !alive(pid), 2_000);
    expect(alive(pid)).toBe(false);
  });

  it('rejects when the shell cannot be spawned', async () => {
    const broken = createProcessDriver({ shell: join(dir, 'no-such-shell') });
    await expect(broken.run(req([{ run: 'true' }]))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
