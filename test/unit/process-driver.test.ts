/**
 * The process driver on the real /bin/sh: order, cwd, env, logs, failures, abort of the whole
 * group, and tasks that outlive a runner process killed with SIGKILL (recover, sweep). Every case
 * runs twice: under the native supervisor (native/supervise.c, which the setup builds: its cases
 * fail when it is missing) and under the shell script it stands in for.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DriverHandle, DriverRun, SessionRecord } from '../../src/runner/driver';
import { probeNativeSupervisor } from '../../src/runner/native-supervisor';
import { createProcessDriver } from '../../src/runner/process-driver';
import { createSpawner, STARTER_GONE, type Spawner } from '../../src/runner/spawner';
import { until } from '../helpers/until';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'runfleet-driver-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const native = probeNativeSupervisor();

it('the native supervisor is built and answers as this code expects', () => {
  expect(native.path === null ? native.why : null).toBeNull();
});

const SUPERVISORS = [
  // Missing: every case of its own fails (above says why).
  { kind: 'native supervisor', supervisor: native.path ?? '/nonexistent/runfleet-supervise', file: 'task.steps' },
  { kind: 'shell script', supervisor: null, file: 'task.sh' },
] as const;

const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

function req(steps: DriverRun['steps'], extra: Partial<DriverRun> = {}): DriverRun {
  return {
    steps,
    cwd: join(dir, 'ws'),
    env: baseEnv,
    logFile: join(dir, 'task.log'),
    sessionDir: join(dir, 'session'),
    labels: { run: 'run/g/1', task: 'build', attempt: 1, runner: 'r1', pool: 'p' },
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

describe.each(SUPERVISORS)('with the $kind', ({ supervisor, file }) => {
  const driver = createProcessDriver({ supervisor });
  /** The command that starts this supervisor by hand, as the helper would. */
  const supervise = (sessionDir: string): [string, string[]] =>
    supervisor ? [supervisor, [join(sessionDir, file), '-', '-']] : ['/bin/sh', [join(sessionDir, file)]];

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
      const childPid = await until(
        'the child pid',
        () => {
          const pid = Number(existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : '');
          return pid > 0 ? pid : undefined;
        },
        { timeoutMs: 5_000, everyMs: 20 },
      );
      expect(alive(childPid)).toBe(true);
      controller.abort();
      const result = await running;
      expect(result).toEqual({ exitCode: 143, failedStep: 0, aborted: true });
      // TERM, not the 5 s KILL grace: quick.
      expect(Date.now() - started).toBeLessThan(4_000);
      await until('the child gone', () => !alive(childPid), { timeoutMs: 2_000, everyMs: 20 });
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
      await until('the background process gone', () => !alive(pid), { timeoutMs: 2_000, everyMs: 20 });
      expect(alive(pid)).toBe(false);
    });

    it('rejects when the supervisor cannot be spawned', async () => {
      const broken = createProcessDriver(
        supervisor
          ? { supervisor: join(dir, 'no-such-supervisor') }
          : { supervisor: null, shell: join(dir, 'no-such-shell') },
      );
      await expect(broken.run(req([{ run: 'true' }]))).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });

  /** The task's record as the runner keeps it, for `recover`. */
  function session(r: DriverRun, handle: DriverHandle | null): SessionRecord {
    return {
      labels: r.labels,
      driver: 'process',
      handle,
      sessionDir: r.sessionDir,
      logFile: r.logFile,
      startedAt: new Date().toISOString(),
      bootId: 'boot-1',
    };
  }

  /** A runner process stand-in that runs `r` and prints the handle; the test kills it with SIGKILL. */
  async function runInChild(r: DriverRun): Promise<{ child: ChildProcess; handle: DriverHandle }> {
    const { signal: _signal, onStarted: _onStarted, ...plain } = r;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', childScript, 'process', JSON.stringify(plain), supervisor ?? '-'],
      {
        // One process (tsx as a loader, not its CLI, which runs the script in a child): SIGKILL hits it.
        cwd: join(__dirname, '..', '..'),
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    const handle = await new Promise<DriverHandle>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.includes('"handle"'));
        if (line) resolve((JSON.parse(line) as { handle: DriverHandle }).handle);
      });
      child.once('exit', (code) => reject(new Error(`driver child exited (${code}) before starting: ${out}`)));
    });
    return { child, handle };
  }

  async function killChild(child: ChildProcess): Promise<void> {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }

  const childScript = join(__dirname, '..', 'helpers', 'driver-child.ts');

  describe('process driver: tasks outlive the runner process', () => {
    it('a runner killed mid-task: the task finishes alone and recover gives its outcome and full log', async () => {
      const r = req([{ run: 'echo one' }, { name: 'slow', run: 'sleep 1; echo two; exit 4' }, { run: 'echo never' }]);
      const { child, handle } = await runInChild(r);
      expect(handle).toMatchObject({ driver: 'process', pid: expect.any(Number) });
      await killChild(child);
      // The supervisor did not die with its runner.
      expect(existsSync(`/proc/${handle.pid}`)).toBe(true);
      await until('the exit file', () => existsSync(join(r.sessionDir, 'exit')), { timeoutMs: 10_000, everyMs: 20 });
      const recovered = await driver.recover(session(r, handle), new AbortController().signal);
      expect(recovered).toEqual({
        state: 'finished',
        result: { exitCode: 4, failedStep: 1, aborted: false },
        finishedAt: expect.any(String),
      });
      expect(log()).toBe(
        [
          '==> step 1/3: echo one',
          'one',
          '==> step 1 exited with code 0',
          '==> step 2/3 (slow): sleep 1; echo two; exit 4',
          'two',
          '==> step 2 exited with code 4',
          '',
        ].join('\n'),
      );
    });

    it('recover of a task still running waits for its end (found by its script even without a pid)', async () => {
      const r = req([{ run: 'sleep 1.5; echo done' }]);
      const { child } = await runInChild(r);
      await killChild(child);
      const started = Date.now();
      // handle null: the runner died before recording the pid; the supervisor is found in /proc.
      const recovered = await driver.recover(session(r, null), new AbortController().signal);
      expect(recovered).toMatchObject({ state: 'finished', result: { exitCode: 0, failedStep: null, aborted: false } });
      expect(Date.now() - started).toBeGreaterThan(500);
      expect(log()).toContain('done\n==> step 1 exited with code 0\n');
    });

    it('a supervisor killed with its group while the runner was down: vanished, with the reason', async () => {
      let pid = 0;
      const r = req([{ run: 'sleep 30' }], {
        onStarted: (h) => {
          pid = h.pid ?? 0;
        },
      });
      const running = driver.run(r);
      // One step: no step file; its header in the log is written just before it starts.
      await until('the step started', () => pid > 0 && readFileSync(r.logFile, 'utf8').includes('==> step 1/1'), {
        timeoutMs: 5_000,
        everyMs: 20,
      });
      process.kill(-pid, 'SIGKILL');
      await running;
      const recovered = await driver.recover(session(r, { driver: 'process', pid }), new AbortController().signal);
      expect(recovered.state).toBe('vanished');
      expect(recovered.state === 'vanished' && recovered.reason).toMatch(
        /supervisor pid \d+ is gone and left no exit file/,
      );
    });

    it('a pid reused by another process is not taken for the supervisor', async () => {
      const r = req([{ run: 'true' }]);
      // This test process's own pid: alive, but not running the task script.
      const recovered = await driver.recover(
        session(r, { driver: 'process', pid: process.pid }),
        new AbortController().signal,
      );
      expect(recovered.state).toBe('vanished');
    });

    it('recover without a pid is not fooled by a task process imitating its supervisor', async () => {
      // The task can work out its session dir's path; a process of its own with the supervisor's
      // command line (`<x> <sessionDir>/task.sh`, a group leader) runs as the task's user, not ours.
      const script = join(dir, 'session', file);
      const r = req([
        { run: `setsid tail ${script} -F >/dev/null 2>&1 </dev/null &` },
        { run: 'sleep 3; touch after' },
      ]);
      const { child } = await runInChild(r);
      const imitation = await until(
        'the imitation running',
        () => {
          for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
            try {
              const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
              if (args[0] === 'tail' && args[1] === script) return Number(name);
            } catch {
              // gone
            }
          }
          return undefined;
        },
        { timeoutMs: 5_000, everyMs: 20 },
      );
      await killChild(child);
      // Recover watches the supervisor it found; the imitation goes away meanwhile. Taken for the
      // supervisor, its end would read as the task vanished; the real one ends with exit code 0.
      const recovering = driver.recover(session(r, null), new AbortController().signal);
      await new Promise((res) => setTimeout(res, 300));
      process.kill(imitation, 'SIGKILL');
      const recovered = await recovering;
      expect(recovered).toMatchObject({ state: 'finished', result: { exitCode: 0, aborted: false } });
      expect(existsSync(join(dir, 'ws', 'after'))).toBe(true);
    });

    it('cancel during recover stops the task (TERM to its group) and reports aborted', async () => {
      const r = req([{ run: 'sleep 30' }, { run: 'touch after' }]);
      const { child, handle } = await runInChild(r);
      await killChild(child);
      const controller = new AbortController();
      const recovering = driver.recover(session(r, handle), controller.signal);
      await new Promise((res) => setTimeout(res, 300));
      const started = Date.now();
      controller.abort();
      const recovered = await recovering;
      expect(recovered).toMatchObject({ state: 'finished', result: { exitCode: 143, failedStep: 0, aborted: true } });
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(existsSync(join(dir, 'ws', 'after'))).toBe(false);
      await until('the supervisor gone', () => !alive(handle.pid ?? 0), { timeoutMs: 2_000, everyMs: 20 });
    });

    it('sweep removes the session dirs no session claims, of the runners given, and kills their supervisors', async () => {
      const sessionsDir = join(dir, 'sessions');
      const sweeper = createProcessDriver({ sessionsDir, supervisor });
      const at = (task: string, runner = 'r1') =>
        req([{ run: 'true' }], {
          sessionDir: join(sessionsDir, task),
          labels: { run: 'run/g/1', task, attempt: 1, runner, pool: 'p' },
        });
      for (const r of [at('kept'), at('done'), at('other', 'r2')]) await sweeper.run(r);
      let orphan = 0;
      const orphanLog = join(dir, 'orphan.log');
      const orphanRun = sweeper.run({
        ...at('orphan'),
        logFile: orphanLog,
        steps: [{ run: 'sleep 30' }],
        onStarted: (h) => {
          orphan = h.pid ?? 0;
        },
      });
      await until(
        'the orphan step started',
        () => orphan > 0 && readFileSync(orphanLog, 'utf8').includes('==> step 1/1'),
        {
          timeoutMs: 5_000,
          everyMs: 20,
        },
      );
      const removed = await sweeper.sweep({ runners: ['r1'], keep: (l) => l.task === 'kept' });
      expect(removed).toBe(2);
      expect(readdirSync(sessionsDir).sort()).toEqual(['kept', 'other']);
      expect((await orphanRun).exitCode).toBe(137);
    });
  });

  /** The start's answer lost with the helper: the start rejects as when the helper dies before answering. */
  function answerLost(start: boolean): Spawner {
    const real = createSpawner();
    return {
      async spawn(r) {
        if (start) await real.spawn(r);
        throw Object.assign(new Error('the process starter ended (SIGKILL) before it answered'), {
          code: STARTER_GONE,
        });
      },
      helperPid: () => real.helperPid(),
    };
  }

  describe('process driver: the helper that starts supervisors dies before it answers', () => {
    it('it had started the supervisor: the driver finds it by its script and gives its true outcome', async () => {
      const lost = createProcessDriver({ spawner: answerLost(true), supervisor });
      const r = req([{ run: 'sleep 0.5; echo ran > ran.txt; exit 4' }]);
      const result = await lost.run(r);
      expect(result).toEqual({ exitCode: 4, failedStep: 0, aborted: false });
      expect(readFileSync(join(r.cwd, 'ran.txt'), 'utf8')).toBe('ran\n');
    });

    it('it had not: the start fails, and a supervisor that starts late runs nothing', async () => {
      const lost = createProcessDriver({ spawner: answerLost(false), supervisor });
      const r = req([{ run: 'echo ran > ran.txt' }]);
      await expect(lost.run(r)).rejects.toMatchObject({ code: STARTER_GONE });
      // The helper's forked child execs the script after all:
      const late = spawnSync(...supervise(r.sessionDir), { cwd: r.cwd, env: baseEnv });
      expect(late.status).toBe(0);
      expect(existsSync(join(r.cwd, 'ran.txt'))).toBe(false);
      expect(existsSync(join(r.sessionDir, 'exit'))).toBe(false);
    });
  });
});
