/**
 * A registered runner offering both drivers (`runner serve --driver process docker`) as a real
 * process, against the real dev server and a real Podman service: it advertises both, runs a
 * docker task next to a process task (labels, log, container removed), honours a docker task's
 * timeout and a stop, and after kill -9 re-attaches to the container, reports the outcome and
 * sweeps a stale container no session claims. Podman failing to start fails the file.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RunfleetClient } from '../../src/client/client';
import type { RunnerAdmin } from '../../src/client/runners';
import { MANAGED_LABEL } from '../../src/runner/docker-driver';
import type { RunState } from '../../src/types';
import { startHarness, testRunnerAdmin, type Harness } from '../helpers/harness';
import { BUSYBOX_IMAGE, startTestPodman, type TestPodman } from '../helpers/podman';
import { startS3, type TestS3 } from '../helpers/s3';
import { killAll, registerRunner, startRunnerProcess, untilRunnerReady, type Proc } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { readWholeTaskLog } from '../helpers/task-log';
import { until } from '../helpers/until';

/**
 * Fast registry timings, as in runner-agent.test.ts. Four slots: with two, a docker run reserved
 * right after another docker task ended (its lease still lingering) was once answered only after
 * the reservation timeout (60 s), which is a runner matter, not what these tests look at.
 */
const SETTINGS = { slots: 4, heartbeatMs: 1_000, pingMs: 1_000, watchdogMs: 6_000 };

let h: Harness;
let admin: RunnerAdmin;
let rf: RunfleetClient;
let podman: TestPodman;
let s3: TestS3;
beforeAll(async () => {
  // Podman first: if it cannot start, every test fails with its reason.
  podman = await startTestPodman();
  // The object store: logs, artifacts and outputs work the same from a container.
  s3 = await startS3();
  h = await startHarness({ runners: [], store: s3.store });
  admin = testRunnerAdmin(h.client, h.controlQueue);
  rf = RunfleetClient.fromClient(h.client, { controlTaskQueue: h.controlQueue, address: h.address });
});
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  await h?.stop();
  await podman?.stop();
  await s3?.stop();
});

/** A runner process and how much of its (shared, appended) log file came before it. */
interface Served {
  proc: Proc;
  since: number;
  /** This process's lines of the log file. */
  output(): string;
}

function serve(name: string, pool: string, token?: string): Served {
  const dir = join(h.dataDir, 'runners', name);
  mkdirSync(join(dir, '..'), { recursive: true });
  const logFile = join(dir, '..', `${name}.log`);
  const since = existsSync(logFile) ? readFileSync(logFile, 'utf8').length : 0;
  const proc = startRunnerProcess({
    address: h.address,
    name,
    pool,
    dataDir: dir,
    ...(token ? { token } : {}),
    healthPort: 0,
    args: ['--driver', 'process', 'docker'],
    // The registry's queue: a runner looks there for purged runners of its pool to clean up after.
    env: { DOCKER_HOST: `unix://${podman.socketPath}`, RUNFLEET_CONTROL_TASK_QUEUE: h.controlQueue, ...s3.env },
  });
  return { proc, since, output: () => proc.output().slice(since) };
}

function ready(served: Served): Promise<void> {
  return untilRunnerReady(served.output);
}

/**
 * A registered runner process offering both drivers, ready to take work, alone in a pool of its
 * own: a pool whose runners were killed with SIGKILL by an earlier test can leave a reservation
 * unanswered until its timeout (60 s).
 */
async function startRunner(prefix: string): Promise<{ name: string; pool: string; proc: Proc }> {
  const name = uniqueName(prefix);
  const pool = uniqueName('pool');
  const token = await registerRunner(h.client, h.controlQueue, { name, pool, settings: SETTINGS });
  const served = serve(name, pool, token);
  await ready(served);
  return { name, pool, proc: served.proc };
}

function dockerTask(pool: string, name: string, steps: string[], extra: Record<string, unknown> = {}) {
  return { name, steps, pool, driver: 'docker', image: BUSYBOX_IMAGE, ...extra };
}

/** The containers (any state) of one run's task, by their labels. */
function containersOf(runId: string, taskName: string): Promise<Docker.ContainerInfo[]> {
  return podman.docker.listContainers({
    all: true,
    filters: { label: [`runfleet.run=${runId}`, `runfleet.task=${taskName}`] },
  });
}

/** Every container id seen for a task while watching (polled until `stop`). */
function watchContainers(runId: string, taskName: string): { ids: Set<string>; stop(): Promise<void> } {
  const ids = new Set<string>();
  let on = true;
  const loop = (async () => {
    while (on) {
      for (const c of await containersOf(runId, taskName).catch(() => [])) ids.add(c.Id);
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  return {
    ids,
    stop: async () => {
      on = false;
      await loop;
    },
  };
}

function readLog(runId: string, task: string): Promise<string> {
  return readWholeTaskLog(rf, runId, task);
}

describe('a registered runner with the process and docker drivers', () => {
  it('advertises both drivers to the registry', async () => {
    const { name } = await startRunner('dk-adv');
    const view = await until(
      'the live status',
      async () => {
        const v = await admin.describe(name);
        return v.live ? v : undefined;
      },
      60_000,
    );
    expect([...view.live!.drivers].sort()).toEqual(['docker', 'process']);
    expect([...(view.record.identity?.drivers ?? [])].sort()).toEqual(['docker', 'process']);
    expect(view.record.status).toBe('ready');
  }, 120_000);

  it('runs a docker task next to a process task: labelled container, output in the log, container removed', async () => {
    const { name, pool } = await startRunner('dk-run');
    const started = Date.now();
    const handle = await h.start({
      name: 'mixed',
      group: '/test/docker',
      tasks: [
        dockerTask(
          pool,
          'boxed',
          [
            'echo "hello from $RUNFLEET_TASK in $(pwd)"',
            'sleep 2',
            'echo "uname: $(uname -s)"',
            // Outputs from a container: the output file is in the workspace, at its /workspace path.
            'echo "where=$RUNFLEET_OUTPUT" >> "$RUNFLEET_OUTPUT"',
            'mkdir -p out && echo "made in a container" > out/made.txt',
          ],
          { artifacts: ['out/**'] },
        ),
        {
          name: 'plain',
          steps: [
            'echo "plain on the host, after $RUNFLEET_NEEDS_BOXED_WHERE"',
            'cat out/made.txt; echo "and on the host" > more.txt',
          ],
          pool,
          depends: ['boxed'],
          artifacts_from: ['boxed'],
          artifacts: ['more.txt'],
        },
        // Artifacts restored into a container's workspace, as its user (nobody).
        dockerTask(pool, 'boxed-again', ['cat more.txt; id -u; rm more.txt && echo "removed it"'], {
          depends: ['plain'],
          artifacts_from: ['plain'],
        }),
      ],
    });
    const runId = handle.workflowId;
    const seen = await until(
      'the task container',
      async () => {
        const list = await containersOf(runId, 'boxed');
        return list.length > 0 ? list : undefined;
      },
      60_000,
    );
    expect(seen).toHaveLength(1);
    expect(seen[0]!.Labels).toMatchObject({
      'runfleet.run': runId,
      'runfleet.task': 'boxed',
      'runfleet.runner': name,
      'runfleet.pool': pool,
      'runfleet.attempt': '1',
      [MANAGED_LABEL]: '1',
    });
    expect(seen[0]!.Image).toContain('runfleet-busybox');

    const s: RunState = await handle.result();
    const tookMs = Date.now() - started;
    expect(s.result).toBe('success');
    expect(s.tasks.boxed).toMatchObject({ status: 'success', runner: name, exitCode: 0 });
    expect(s.tasks.plain).toMatchObject({ status: 'success', runner: name, exitCode: 0 });

    const log = await readLog(runId, 'boxed');
    expect(log).toContain('hello from boxed in /workspace');
    expect(log).toContain('uname: Linux');
    expect(s.tasks.boxed?.outputs).toEqual({ where: '/workspace/.runfleet-output' });
    const plain = await readLog(runId, 'plain');
    expect(plain).toContain('plain on the host, after /workspace/.runfleet-output');
    expect(plain).toContain('made in a container');
    const again = await readLog(runId, 'boxed-again');
    expect(again).toContain('==> artifacts of plain: 1 entries restored');
    expect(again).toContain('and on the host\n65534\nremoved it');
    await until('the container removed', async () => (await containersOf(runId, 'boxed')).length === 0, 15_000);
    console.log(`docker + process run took ${tookMs} ms end to end`);
  }, 120_000);

  it('kills a docker task past its timeout, and on a stop; the container goes either way', async () => {
    const { pool } = await startRunner('dk-kill');
    const t0 = Date.now();
    const timed = await h.start({
      name: 'timeout',
      group: '/test/docker',
      tasks: [dockerTask(pool, 'slow', ['sleep 60'], { timeout: '2s' })],
    });
    const t = await timed.result();
    const timeoutMs = Date.now() - t0;
    expect(t.result).toBe('failed');
    expect(t.tasks.slow!.status).toBe('failed');
    expect(t.tasks.slow!.reason).toContain('timed out');
    const goneAfterTimeout = Date.now();
    await until(
      'the timed out container removed',
      async () => (await containersOf(timed.workflowId, 'slow')).length === 0,
      30_000,
    );
    const timeoutGoneMs = Date.now() - goneAfterTimeout;

    const stopped = await h.start({
      name: 'stop',
      group: '/test/docker',
      tasks: [dockerTask(pool, 'long', ['sleep 60'])],
    });
    await until(
      'the container running',
      async () => (await containersOf(stopped.workflowId, 'long')).some((c) => c.State === 'running'),
      60_000,
    );
    const t1 = Date.now();
    await stopped.signal('stop', { reason: 'test over', by: 'test' });
    const s = await stopped.result();
    expect(s.result).toBe('stopped');
    expect(s.tasks.long!.status).toBe('cancelled');
    await until(
      'the stopped container removed',
      async () => (await containersOf(stopped.workflowId, 'long')).length === 0,
      30_000,
    );
    const stopMs = Date.now() - t1;
    console.log(
      `timeout 2s: run failed after ${timeoutMs} ms, container gone ${timeoutGoneMs} ms later; stop: container gone ${stopMs} ms after the signal`,
    );
  }, 180_000);

  it('re-attaches after kill -9, reports the outcome with the whole output, and sweeps a stale container', async () => {
    const { name, pool, proc } = await startRunner('dk-back');
    const handle = await h.start(
      {
        name: 'reattach',
        group: '/test/docker',
        // Long enough to outlast the kill, a stale container's start and the runner's restart
        // under CI's load: with 8 s the container once ended before the runner was back.
        tasks: [dockerTask(pool, 'boxed', ['echo start', 'sleep 20', 'echo done'])],
      },
      { heartbeatTimeout: '3s' },
    );
    const runId = handle.workflowId;
    const watch = watchContainers(runId, 'boxed');
    try {
      await until(
        'the container running',
        async () => (await containersOf(runId, 'boxed')).some((c) => c.State === 'running'),
        60_000,
      );
      proc.kill('SIGKILL');
      await proc.exited;
      const killedAt = Date.now();

      // A container of this runner that no session claims (created by a process killed before it
      // recorded anything, say): the restarted runner must remove it.
      const stale = await podman.docker.createContainer({
        Image: BUSYBOX_IMAGE,
        Cmd: ['sleep', '300'],
        Labels: {
          [MANAGED_LABEL]: '1',
          'runfleet.runner': name,
          'runfleet.run': `run/test/stale-${name}`,
          'runfleet.task': 'ghost',
          'runfleet.attempt': '1',
          'runfleet.pool': pool,
        },
      });
      await stale.start();

      const back = serve(name, pool);
      await ready(back);
      const readyMs = Date.now() - killedAt;
      expect(
        (await containersOf(runId, 'boxed')).some((c) => c.State === 'running'),
        `the container still running when the runner was back, ${readyMs} ms after the kill`,
      ).toBe(true);

      const s: RunState = await handle.result();
      expect(s.result).toBe('success');
      expect(s.tasks.boxed).toMatchObject({ status: 'success', exitCode: 0, runner: name, attempts: 1 });
      const log = await readLog(runId, 'boxed');
      expect(log).toContain('start');
      expect(log).toContain('re-attached');
      expect(log).toContain('done');
      expect(log.match(/^start$/gm)).toHaveLength(1);
      expect(log.match(/^done$/gm)).toHaveLength(1);
      expect(back.output()).toMatch(/recovering 1 task\(s\)/);

      await until(
        'the stale container swept',
        async () => {
          try {
            await podman.docker.getContainer(stale.id).inspect();
            return false;
          } catch (err) {
            return (err as { statusCode?: number }).statusCode === 404;
          }
        },
        30_000,
      );
      await until('the runner says so', () => /docker driver: removed 1 stale task\(s\)/.test(back.output()), 60_000);
      await until('the task container removed', async () => (await containersOf(runId, 'boxed')).length === 0, 15_000);
      console.log(`after kill -9 the runner was ready again in ${readyMs} ms; outcome: ${s.tasks.boxed!.status}`);
    } finally {
      await watch.stop();
    }
    // One container for the task over its whole life, restart included.
    expect(watch.ids.size).toBe(1);
  }, 180_000);

  it('purges a temporary runner once it is gone, and a runner of its pool removes the container it left', async () => {
    const name = uniqueName('dk-temp');
    const pool = uniqueName('pool');
    const token = await registerRunner(h.client, h.controlQueue, { name, pool, settings: SETTINGS, temporary: true });
    const temp = serve(name, pool, token);
    await ready(temp);
    const handle = await h.start(
      { name: 'left', group: '/test/docker', tasks: [dockerTask(pool, 'orphan', ['sleep 300'])] },
      { heartbeatTimeout: '3s' },
    );
    await until(
      'the container running',
      async () => (await containersOf(handle.workflowId, 'orphan')).some((c) => c.State === 'running'),
      60_000,
    );
    temp.proc.kill('SIGKILL');
    await temp.proc.exited;

    // Gone for good: lost, then purged by the registry (temporary); its lost task fails.
    await until(
      'the temporary runner purged',
      async () => (await admin.get(name).catch(() => null))?.status === 'deleted',
      90_000,
    );
    const s = await h.waitFor(handle, (st) => st.tasks.orphan?.status === 'failed', 60_000);
    expect(s.tasks.orphan!.reason).toContain(`runner "${name}" was purged`);
    expect((await containersOf(handle.workflowId, 'orphan')).length).toBe(1);

    // Another runner of the same pool cleans up what it left on the shared engine.
    const peerName = uniqueName('dk-peer');
    const peerToken = await registerRunner(h.client, h.controlQueue, { name: peerName, pool, settings: SETTINGS });
    const peer = serve(peerName, pool, peerToken);
    await ready(peer);
    await until(
      'the orphan container removed',
      async () => (await containersOf(handle.workflowId, 'orphan')).length === 0,
      60_000,
    );
    // Logged once every driver has swept: a moment after the container is gone.
    await until(
      'the peer says so',
      () => /removed 1 task\(s\) that purged runners of this pool left behind/.test(peer.output()),
      60_000,
    );
  }, 240_000);
});
