/**
 * What a registered runner owes the fleet after its process restarts (`runner serve` processes,
 * kill -9, against the real dev server):
 * - a task it re-attaches keeps its deadline (the timeout travels in the session record) and is
 *   killed by a stop of its run, although no execution activity holds it any more;
 * - a runner purged while it was stopped learns it when it starts again, wipes its state and
 *   exits 0, as an online one does.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunnerAdmin } from '../../src/client/runners';
import type { RunState } from '../../src/types';
import { stopRunSignal } from '../../workflows/run-messages';
import { startHarness, task, testRunnerAdmin, type Harness } from '../helpers/harness';
import { fileLines, sharedFile } from '../helpers/shared-files';
import {
  killAll,
  registerRunner,
  runnerStateDir,
  serveRunner,
  startRunnerProcess,
  type Proc,
} from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

/** Fast registry timings: idle after 4 s without heartbeat, lost 8 s later. */
const SETTINGS = { slots: 2, heartbeatMs: 1_000, pingMs: 1_000, watchdogMs: 6_000 };

let h: Harness;
let admin: RunnerAdmin;
beforeAll(async () => {
  h = await startHarness({ runners: [] });
  admin = testRunnerAdmin(h.client, h.controlQueue);
});
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  await h?.stop();
});

const runnerDir = (name: string) => runnerStateDir(h.dataDir, name);
const serve = (name: string, token?: string): Proc =>
  serveRunner({ address: h.address, root: h.dataDir, name, pool: h.pool, ...(token ? { token } : {}) });
const lines = fileLines;

/** A runner registered with SETTINGS, serving. */
async function servingRunner(prefix: string): Promise<{ name: string; proc: Proc }> {
  const name = uniqueName(prefix);
  const token = await registerRunner(h.client, h.controlQueue, { name, pool: h.pool, settings: SETTINGS });
  const proc = serve(name, token);
  await until('the runner serving', () => / serving pool /.test(proc.output()), {
    timeoutMs: 60_000,
    everyMs: 200,
    detail: () => proc.output(),
  });
  return { name, proc };
}

/** A step that runs `sleep` in the task's process group and writes its pid to `pids`. */
function sleeper(pids: string, seconds: number): string {
  return `sleep ${seconds} & echo $! >> ${pids}; wait`;
}

const alive = (pid: string) => existsSync(`/proc/${pid}`);

/** Kills the runner mid-task, waits for the run to call the task lost, and starts the runner again. */
async function restartMidTask(name: string, proc: Proc, handle: Parameters<Harness['state']>[0], taskName: string) {
  proc.kill('SIGKILL');
  await proc.exited;
  await h.waitFor(handle, (s) => s.tasks[taskName]?.status === 'lost');
  const again = serve(name);
  await until(
    'the runner recovering the task',
    () => /recovering 1 task\(s\) an earlier runner process started/.test(again.output()),
    { timeoutMs: 60_000, everyMs: 200, detail: () => again.output() },
  );
  return again;
}

describe('a task re-attached after a runner restart', () => {
  it('is killed at its deadline and fails as the timeout it is', async () => {
    const { name, proc } = await servingRunner('deadline');
    const pids = sharedFile(h.dataDir, `${name}.pids`);
    const after = sharedFile(h.dataDir, `${name}.after`);
    const handle = await h.start(
      {
        name: 'deadline',
        group: '/test/restart',
        tasks: [task(h, 'slow', [sleeper(pids, 90), `echo after >> ${after}`], { timeout: '30s' })],
      },
      { heartbeatTimeout: '3s' },
    );
    await until('the task started', () => lines(pids).length === 1, { timeoutMs: 60_000, everyMs: 200 });
    const startedAt = Date.now();
    const [pid] = lines(pids) as [string];
    await restartMidTask(name, proc, handle, 'slow');

    // The deadline is 30 s after the start; the sleep would go on for 90.
    const s: RunState = await h.waitFor(handle, (st) => st.tasks.slow?.status === 'failed', 60_000);
    const endedAfterMs = Date.now() - startedAt;
    expect(s.tasks.slow!.reason).toMatch(/timed out after 30s/);
    expect(s.tasks.slow!.attempts).toBe(1);
    expect(endedAfterMs).toBeLessThan(50_000);
    await until('the task process gone', () => !alive(pid), { timeoutMs: 10_000, everyMs: 200 });
    expect(lines(after)).toEqual([]);
    console.log(`re-attached task killed and reported ${endedAfterMs} ms after it started (timeout 30 s)`);
  }, 180_000);

  it('is killed when its run is stopped', async () => {
    const { name, proc } = await servingRunner('stopped');
    const pids = sharedFile(h.dataDir, `${name}.pids`);
    const after = sharedFile(h.dataDir, `${name}.after`);
    const handle = await h.start(
      {
        name: 'stopped',
        group: '/test/restart',
        tasks: [task(h, 'slow', [sleeper(pids, 120), `echo after >> ${after}`])],
      },
      { heartbeatTimeout: '3s' },
    );
    await until('the task started', () => lines(pids).length === 1, { timeoutMs: 60_000, everyMs: 200 });
    const [pid] = lines(pids) as [string];
    const again = await restartMidTask(name, proc, handle, 'slow');

    await handle.signal(stopRunSignal, { reason: 'wrong branch', by: 'test' });
    const s: RunState = await handle.result();
    expect(s.result).toBe('stopped');
    expect(s.tasks.slow!.status).toBe('cancelled');
    const stoppedAt = Date.now();
    await until('the task process gone', () => !alive(pid), { timeoutMs: 30_000, everyMs: 200 });
    console.log(`re-attached task killed ${Date.now() - stoppedAt} ms after its run ended stopped`);
    expect(lines(after)).toEqual([]);
    // Its record is closed: a later start recovers nothing.
    await until('the runner closing the record', () => /no longer wants it/.test(again.output()), {
      timeoutMs: 10_000,
      everyMs: 200,
      detail: () => again.output(),
    });
  }, 180_000);
});

/** Starts the purged runner again: it must wipe its state directory and exit 0 within a minute. */
async function expectWipedWhenBack(name: string): Promise<void> {
  const back = serve(name);
  const code = await Promise.race([
    back.exited,
    new Promise<string>((r) => setTimeout(() => r('still running after 60 s'), 60_000)),
  ]);
  expect(code, back.output().slice(-2_000)).toBe(0);
  expect(existsSync(runnerDir(name))).toBe(false);
  expect(back.output()).toMatch(new RegExp(`runner ${name} was purged from the fleet`));
}

describe('a runner purged while it was stopped', () => {
  it('learns it when it starts again: wipes its state directory and exits 0', async () => {
    const { name, proc } = await servingRunner('offline');
    proc.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    // Offline in the registry: the purge completes the runner's workflow at once (nothing to tell).
    await until('the runner offline', async () => ['idle', 'lost'].includes((await admin.get(name)).status), {
      timeoutMs: 60_000,
      everyMs: 500,
    });
    const purged = await admin.purge(name, { by: 'test', reason: 'machine retired' });
    expect(purged.record.status).toBe('deleted');

    await expectWipedWhenBack(name);
  }, 180_000);

  it('learns it while the registry still waits for it to take its last session', async () => {
    const { name, proc } = await servingRunner('wiping');
    proc.kill('SIGKILL');
    await proc.exited;
    // Still `ready` in the registry: the purge waits (30 s) for the runner to take its delete session.
    const purged = await admin.purge(name, { by: 'test', reason: 'machine retired', waitMs: 1_000 });
    expect(purged.record.status).toBe('deleted');

    await expectWipedWhenBack(name);
  }, 180_000);
});

describe('the sweep while the runner serves (runner.sweepSeconds, default 5 minutes)', () => {
  it('kills and removes a task no session record claims that appeared after the runner started', async () => {
    const name = uniqueName('sweep');
    const token = await registerRunner(h.client, h.controlQueue, { name, pool: h.pool, settings: SETTINGS });
    const dataDir = runnerDir(name);
    const proc = startRunnerProcess({
      address: h.address,
      name,
      pool: h.pool,
      dataDir,
      token,
      env: { RUNFLEET_SWEEP_SECONDS: '2' },
    });
    await until('the runner serving', () => / serving pool /.test(proc.output()), {
      timeoutMs: 60_000,
      everyMs: 200,
      detail: () => proc.output(),
    });

    // After the start's sweep: a task folder of this runner with a live supervisor and no record,
    // as a process killed between starting a task and recording it would leave (nobody reports it).
    const orphan = join(dataDir, 'sessions', 'orphan-task');
    mkdirSync(orphan, { recursive: true });
    writeFileSync(
      join(orphan, 'labels.json'),
      JSON.stringify({ run: 'run/none', task: 'orphan', attempt: 1, runner: name, pool: h.pool }),
    );
    writeFileSync(join(orphan, 'task.sh'), 'sleep 300\n');
    const supervisor = spawn('/bin/sh', [join(orphan, 'task.sh')], { detached: true, stdio: 'ignore' });
    const killedBy = new Promise<NodeJS.Signals | null>((resolve) =>
      supervisor.on('exit', (_code, sig) => resolve(sig)),
    );
    expect(alive(String(supervisor.pid))).toBe(true);

    await until('the orphan task removed', () => !existsSync(orphan), { timeoutMs: 20_000, everyMs: 200 });
    // Our child: its exit event (not /proc, where it would linger as a zombie) says it was killed.
    expect(await killedBy).toBe('SIGKILL');
    // Logged once the sweep returns, after the folder is gone: it reaches us through the pipe.
    await until('the sweep logged', () => /removed 1 stale task\(s\) no session claims/.test(proc.output()), {
      timeoutMs: 10_000,
      everyMs: 100,
      detail: () => proc.output(),
    });
  }, 120_000);
});
