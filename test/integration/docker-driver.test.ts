/**
 * The docker driver against a real Podman service: steps in one container, the failing step,
 * logs, labels, cancel, re-attach after the runner process was killed with SIGKILL, an outcome
 * learned after the runner was down, and the sweep of containers no session claims.
 * Podman is slow on a small machine: few containers, each test its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerDriver, MANAGED_LABEL } from '../../src/runner/docker-driver';
import type { Driver, DriverHandle, DriverRun, SessionRecord, TaskLabels } from '../../src/runner/driver';
import { BUSYBOX_IMAGE, startTestPodman, type TestPodman } from '../helpers/podman';
import { until } from '../helpers/until';

let podman: TestPodman;
let driver: Driver;
/** Runner names of this file: the engine is shared with other test files and runs. */
const runner = `docker-test-${process.pid}`;

beforeAll(async () => {
  podman = await startTestPodman();
  driver = createDockerDriver({ socketPath: podman.socketPath, runner, pool: 'linux' });
});
afterAll(async () => {
  await podman?.stop();
});

let seq = 0;
function req(steps: DriverRun['steps'], extra: Partial<DriverRun> = {}): DriverRun {
  const task = `t${++seq}`;
  const dir = join(podman.dir, task);
  mkdirSync(dir, { recursive: true });
  return {
    steps,
    cwd: join(dir, 'ws'),
    env: { PATH: '/host/only/bin', HOME: '/host/home', GREETING: 'hello world', RUNFLEET_WORKSPACE: join(dir, 'ws') },
    logFile: join(dir, 'task.log'),
    sessionDir: join(dir, 'session'),
    labels: { run: 'run/main/7', task, attempt: 1, runner, pool: 'linux' },
    image: BUSYBOX_IMAGE,
    signal: new AbortController().signal,
    ...extra,
  };
}

function session(r: DriverRun, handle: DriverHandle | null): SessionRecord {
  return {
    labels: r.labels,
    driver: 'docker',
    handle,
    sessionDir: r.sessionDir,
    logFile: r.logFile,
    startedAt: new Date().toISOString(),
    bootId: 'boot-1',
  };
}

async function exists(containerId: string): Promise<boolean> {
  try {
    await podman.docker.getContainer(containerId).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

const childScript = join(__dirname, '..', 'helpers', 'driver-child.ts');

/** A runner process stand-in running `r` with the docker driver; resolves once the container started. */
async function runInChild(r: DriverRun): Promise<{ child: ChildProcess; handle: DriverHandle }> {
  const { signal: _signal, onStarted: _onStarted, ...plain } = r;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', childScript, 'docker', JSON.stringify(plain), podman.socketPath],
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

describe('docker driver (Podman)', () => {
  it('runs the steps in one container: output, the failing step, workspace files, env, labels; then removes it', async () => {
    let labels: Promise<Record<string, string>> | undefined;
    let containerId = '';
    const r = req(
      [
        { run: 'echo out; echo err >&2; echo kept > file.txt' },
        { name: 'env', run: 'printf "%s|%s|%s|%s\\n" "$GREETING" "$PWD" "$RUNFLEET_WORKSPACE" "$PATH"' },
        { name: 'fail', run: 'echo failing; exit 3' },
        { run: 'echo never' },
      ],
      {
        onStarted: (h) => {
          containerId = h.containerId ?? '';
          labels = podman.docker
            .getContainer(containerId)
            .inspect()
            .then((i) => i.Config.Labels);
        },
      },
    );
    const started = Date.now();
    const result = await driver.run(r);
    const elapsed = Date.now() - started;
    expect(result).toEqual({ exitCode: 3, failedStep: 2, aborted: false });
    expect(readFileSync(r.logFile, 'utf8')).toBe(
      [
        '==> step 1/4: echo out; echo err >&2; echo kept > file.txt',
        'out',
        'err',
        '==> step 1 exited with code 0',
        '==> step 2/4 (env): printf "%s|%s|%s|%s\\n" "$GREETING" "$PWD" "$RUNFLEET_WORKSPACE" "$PATH"',
        // The host's PATH is not the image's: dropped, the image's default applies.
        'hello world|/workspace|/workspace|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        '==> step 2 exited with code 0',
        '==> step 3/4 (fail): echo failing; exit 3',
        'failing',
        '==> step 3 exited with code 3',
        '',
      ].join('\n'),
    );
    expect(readFileSync(join(r.cwd, 'file.txt'), 'utf8')).toBe('kept\n');
    expect(await labels).toMatchObject({
      'runfleet.run': 'run/main/7',
      'runfleet.task': r.labels.task,
      'runfleet.attempt': '1',
      'runfleet.runner': runner,
      'runfleet.pool': 'linux',
      [MANAGED_LABEL]: '1',
    });
    expect(await exists(containerId)).toBe(false);
    console.log(`docker driver: a 4-step task (create, start, run, exit, remove) took ${elapsed} ms`);
  });

  it('cancel stops the container (TERM to the steps): aborted, nothing after, removed', async () => {
    const controller = new AbortController();
    let containerId = '';
    const r = req([{ run: 'echo started; sleep 30' }, { run: 'touch after' }], {
      signal: controller.signal,
      onStarted: (h) => {
        containerId = h.containerId ?? '';
      },
    });
    const running = driver.run(r);
    await until(
      'the task to start',
      () => existsSync(r.logFile) && readFileSync(r.logFile, 'utf8').includes('started'),
      {
        timeoutMs: 10_000,
        everyMs: 50,
      },
    );
    const stopAt = Date.now();
    controller.abort();
    const result = await running;
    expect(result).toEqual({ exitCode: 143, failedStep: 0, aborted: true });
    // TERM reached the step: no wait for the KILL after the grace.
    expect(Date.now() - stopAt).toBeLessThan(4_500);
    expect(existsSync(join(r.cwd, 'after'))).toBe(false);
    expect(readFileSync(r.logFile, 'utf8')).toContain('==> step 1 exited with code 143\n');
    expect(await exists(containerId)).toBe(false);
  });

  it('a runner killed mid-task: recover re-attaches, keeps the log whole, reports the true exit code, removes the container', async () => {
    const r = req([{ run: 'echo before; sleep 3; echo after; exit 5' }]);
    const { child, handle } = await runInChild(r);
    await killChild(child);
    expect((await podman.docker.getContainer(handle.containerId ?? '').inspect()).State.Running).toBe(true);
    const recovered = await driver.recover(session(r, handle), new AbortController().signal);
    expect(recovered).toEqual({
      state: 'finished',
      result: { exitCode: 5, failedStep: 0, aborted: false },
      finishedAt: expect.any(String),
    });
    const log = readFileSync(r.logFile, 'utf8');
    expect(log).toContain('==> runner restarted: re-attached\n');
    // Every line once: what the killed runner wrote, then the rest from the engine.
    expect(log.match(/^before$/gm)).toHaveLength(1);
    expect(log.match(/^after$/gm)).toHaveLength(1);
    expect(log).toMatch(/after\n==> step 1 exited with code 5\n$/);
    expect(await exists(handle.containerId ?? '')).toBe(false);
  });

  it('a container that exited while the runner was down: recover gives its outcome and its output', async () => {
    const r = req([{ run: 'sleep 1; echo done' }, { name: 'check', run: 'exit 2' }]);
    const { child, handle } = await runInChild(r);
    await killChild(child);
    const id = handle.containerId ?? '';
    await until('the container to stop', async () => !(await podman.docker.getContainer(id).inspect()).State.Running, {
      timeoutMs: 15_000,
      everyMs: 50,
    });
    const recovered = await driver.recover(session(r, handle), new AbortController().signal);
    expect(recovered).toMatchObject({ state: 'finished', result: { exitCode: 2, failedStep: 1, aborted: false } });
    const log = readFileSync(r.logFile, 'utf8');
    expect(log).not.toContain('re-attached');
    expect(log.match(/^done$/gm)).toHaveLength(1);
    expect(log).toMatch(/==> step 2 exited with code 2\n$/);
    expect(await exists(id)).toBe(false);
    // Recovering again (the runner died before recording it): the exit file still tells.
    const again = await driver.recover(session(r, handle), new AbortController().signal);
    expect(again).toMatchObject({ state: 'finished', result: { exitCode: 2, failedStep: 1 } });
  });

  it('a container that is gone without an outcome: vanished', async () => {
    const r = req([{ run: 'true' }]);
    const recovered = await driver.recover(
      session(r, { driver: 'docker', containerId: 'f'.repeat(64) }),
      new AbortController().signal,
    );
    expect(recovered.state).toBe('vanished');
    expect(recovered.state === 'vanished' && recovered.reason).toMatch(/container f+ is gone and left no exit file/);
  });

  it("sweep removes this runner's containers no session claims, and leaves the rest", async () => {
    const create = (l: TaskLabels) =>
      podman.docker.createContainer({
        Image: BUSYBOX_IMAGE,
        Cmd: ['/bin/sh', '-c', 'true'],
        Labels: {
          'runfleet.run': l.run,
          'runfleet.task': l.task,
          'runfleet.attempt': String(l.attempt),
          'runfleet.runner': l.runner,
          'runfleet.pool': l.pool,
          [MANAGED_LABEL]: '1',
        },
      });
    const mine = { run: 'run/s/1', attempt: 1, runner: `${runner}-sweep`, pool: 'linux' };
    const stale = await create({ ...mine, task: 'stale' });
    const kept = await create({ ...mine, task: 'kept' });
    const others = await create({ ...mine, task: 'stale', runner: `${runner}-other` });
    try {
      const removed = await driver.sweep({ runners: [mine.runner], keep: (l) => l.task === 'kept' });
      expect(removed).toBe(1);
      expect(await exists(stale.id)).toBe(false);
      expect(await exists(kept.id)).toBe(true);
      expect(await exists(others.id)).toBe(true);
    } finally {
      for (const c of [stale, kept, others]) await c.remove({ force: true }).catch(() => undefined);
    }
  });

  it('an image the engine does not have: TaskSpawnFailed naming it, nothing left behind', async () => {
    const r = req([{ run: 'true' }], { image: 'localhost/runfleet-no-such-image:1' });
    await expect(driver.run(r)).rejects.toMatchObject({
      code: 'TaskSpawnFailed',
      message: expect.stringContaining('localhost/runfleet-no-such-image:1'),
    });
    const left = await podman.docker.listContainers({
      all: true,
      filters: { label: [`runfleet.task=${r.labels.task}`] },
    });
    expect(left).toEqual([]);
  });

  it('without the engine socket: a DriverUnavailable error naming it', async () => {
    const missing = createDockerDriver({ socketPath: join(podman.dir, 'absent.sock'), runner, pool: 'linux' });
    await expect(missing.run(req([{ run: 'true' }]))).rejects.toMatchObject({
      code: 'DriverUnavailable',
      message: expect.stringContaining('absent.sock'),
    });
  });
});
