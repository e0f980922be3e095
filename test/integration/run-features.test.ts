/**
 * What CI users reach for, end to end on the dev server: retries of failed and timed-out tasks
 * (each attempt kept), cancelling one task (its dependents follow their conditions), a matrix, and
 * runner selection by labels (`runs_on`) among registered `runner serve` processes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunState } from '../../src/types';
import { cancelTaskUpdate } from '../../workflows/run-messages';
import { startHarness, task, testRunnerAdmin, type Harness } from '../helpers/harness';
import { killAll, startRunnerProcess, type Proc } from '../helpers/processes';
import { sharedDir, sharedFile } from '../helpers/shared-files';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

let h: Harness;
let shared: string;
beforeAll(async () => {
  h = await startHarness({ runners: [{ name: uniqueName('feat-r1'), slots: 6 }] });
  shared = sharedDir();
});
afterAll(async () => {
  await killAll();
  await h?.stop();
});

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('retries', () => {
  it('starts a failed task again after its backoff, and keeps each attempt with its outcome', async () => {
    const count = sharedFile(shared, 'flaky');
    // Fails on its first run, succeeds on its second.
    const flaky = `n=$(wc -l < ${count}); echo run >> ${count}; [ "$n" -ge 1 ]`;
    const handle = await h.start({
      name: 'retry-flaky',
      tasks: [
        task(h, 'flaky', [flaky], { retry: { limit: 2, backoff: '1s' } }),
        task(h, 'after', ['true'], { depends: ['flaky'] }),
      ],
    });
    const s: RunState = await handle.result();
    expect(s.result).toBe('success');
    const t = s.tasks.flaky!;
    expect(t).toMatchObject({ status: 'success', attempts: 2, exitCode: 0 });
    expect(t.history).toHaveLength(1);
    expect(t.history![0]).toMatchObject({ attempt: 1, outcome: 'failed', exitCode: 1, retried: true });
    expect(t.history![0]!.reason).toContain('step 1 exited with code 1');
    expect(lines(count)).toHaveLength(2);
    // The retry waited its backoff after the failed attempt ended.
    expect(Date.parse(t.startedAt!) - Date.parse(t.history![0]!.finishedAt)).toBeGreaterThanOrEqual(900);
    expect(s.tasks.after!.status).toBe('success');
  });

  it('fails the task once its retries are spent; a timeout is retried only when `on` lists it', async () => {
    const handle = await h.start({
      name: 'retry-spent',
      tasks: [
        task(h, 'always', ['exit 7'], { retry: { limit: 2, backoff: '1s', on: ['failed'] } }),
        task(h, 'slow-not-retried', ['sleep 30'], {
          timeout: '1s',
          retry: { limit: 3, backoff: '1s', on: ['failed'] },
        }),
        task(h, 'slow-retried', ['sleep 30'], { timeout: '1s', retry: { limit: 1, backoff: '1s', on: ['timeout'] } }),
      ],
    });
    const s: RunState = await handle.result();
    expect(s.result).toBe('failed');
    expect(s.tasks.always).toMatchObject({ status: 'failed', attempts: 3, exitCode: 7 });
    expect(s.tasks.always!.history!.map((a) => a.exitCode)).toEqual([7, 7]);
    expect(s.tasks['slow-not-retried']).toMatchObject({ status: 'failed', attempts: 1 });
    expect(s.tasks['slow-not-retried']!.history).toBeUndefined();
    expect(s.tasks['slow-retried']).toMatchObject({ status: 'failed', attempts: 2 });
    expect(s.tasks['slow-retried']!.history!.map((a) => a.outcome)).toEqual(['timeout']);
    expect(s.tasks['slow-retried']!.reason).toContain('timed out after 1s');
  });
});

describe('cancelling one task', () => {
  it('kills a running task; its dependents are skipped, the other branches go on', async () => {
    const pidFile = sharedFile(shared, 'cancel-pid');
    const handle = await h.start({
      name: 'cancel-one',
      tasks: [
        task(h, 'long', [`echo $$ >> ${pidFile}; exec sleep 120`]),
        task(h, 'after-long', ['true'], { depends: ['long'] }),
        task(h, 'cleanup', ['true'], { depends: [{ task: 'long', conditions: ['on_skipped'] }] }),
        task(h, 'other', ['sleep 1']),
      ],
    });
    await h.waitFor(handle, (s) => s.tasks.long?.status === 'running' && lines(pidFile).length === 1, 60_000);
    const pid = Number(lines(pidFile)[0]);
    expect(alive(pid)).toBe(true);
    const after = await handle.executeUpdate(cancelTaskUpdate, {
      args: [{ task: 'long', by: 'tester', reason: 'not needed' }],
    });
    expect(after.tasks.long!.status).toMatch(/reserved|cancelled/);
    const s: RunState = await handle.result();
    expect(s.tasks.long).toMatchObject({ status: 'cancelled', cancelledBy: 'tester' });
    expect(s.tasks.long!.reason).toContain('cancelled by tester: not needed');
    expect(s.tasks['after-long']!.status).toBe('skipped');
    expect(s.tasks.cleanup!.status).toBe('success');
    expect(s.tasks.other!.status).toBe('success');
    expect(alive(pid)).toBe(false);
  });

  it('cancels a task that waits on its parents at once, and refuses a task that is final', async () => {
    const handle = await h.start({
      name: 'cancel-waiting',
      tasks: [
        task(h, 'first', ['sleep 2']),
        task(h, 'second', ['true'], { depends: ['first'] }),
        // Keeps the run going after `first` ends, for the refused cancel below.
        task(h, 'keep', ['sleep 8']),
      ],
    });
    const after = await handle.executeUpdate(cancelTaskUpdate, {
      args: [{ task: 'second', by: 'tester', reason: 'skip it' }],
    });
    expect(after.tasks.second).toMatchObject({ status: 'cancelled', reason: 'cancelled by tester: skip it' });
    await h.waitFor(handle, (s) => s.tasks.first?.status === 'success', 60_000);
    await expect(
      handle.executeUpdate(cancelTaskUpdate, { args: [{ task: 'first', by: 'tester', reason: 'late' }] }),
    ).rejects.toMatchObject({ cause: { type: 'InvalidState', message: 'task "first" is success already' } });
    await expect(
      handle.executeUpdate(cancelTaskUpdate, { args: [{ task: 'nope', by: 'tester', reason: '' }] }),
    ).rejects.toMatchObject({ cause: { type: 'NotFound', message: 'no task "nope" in this run' } });
    const s: RunState = await handle.result();
    expect(s.tasks.first!.status).toBe('success');
    expect(s.tasks.second!.status).toBe('cancelled');
  });
});

describe('matrix', () => {
  it('runs each cell as its own task with its values; dependents wait for every cell', async () => {
    const out = sharedFile(shared, 'matrix');
    const handle = await h.start({
      name: 'matrix',
      tasks: [
        task(
          h,
          'test',
          [`echo "$MATRIX_NODE/$MATRIX_OS/\${{ matrix.node }}" >> ${out}`, 'sleep 1', '[ "$MATRIX_NODE" != 22 ]'],
          {
            matrix: { node: [20, 22], os: ['linux', 'alpine'] },
          },
        ),
        task(h, 'on-success', ['true'], { depends: ['test'] }),
        task(h, 'always', [`echo always >> ${out}`], {
          depends: [{ task: 'test', conditions: ['on_success', 'on_failure'] }],
        }),
      ],
    });
    const s: RunState = await handle.result();
    const cells = [
      'test-node-20-os-linux',
      'test-node-20-os-alpine',
      'test-node-22-os-linux',
      'test-node-22-os-alpine',
    ];
    expect(Object.keys(s.tasks).sort()).toEqual([...cells, 'always', 'on-success'].sort());
    expect(cells.map((c) => s.tasks[c]!.status)).toEqual(['success', 'success', 'failed', 'failed']);
    expect(s.tasks['test-node-22-os-linux']!.reason).toContain('step 3 exited with code 1');
    // Each cell ran once, with its own values in its env and in its steps.
    const written = lines(out);
    expect(written.slice(0, 4).sort()).toEqual(['20/alpine/20', '20/linux/20', '22/alpine/22', '22/linux/22']);
    // `always` started after the last cell ended; `on-success` needed all four to succeed.
    expect(written[4]).toBe('always');
    const lastCell = Math.max(...cells.map((c) => Date.parse(s.tasks[c]!.finishedAt!)));
    expect(Date.parse(s.tasks.always!.startedAt!)).toBeGreaterThanOrEqual(lastCell);
    expect(s.tasks.always!.status).toBe('success');
    expect(s.tasks['on-success']!.status).toBe('skipped');
    expect(s.result).toBe('failed');
  });

  it('refuses a direct start whose matrix is invalid, naming the field, and starts nothing', async () => {
    const handle = await h.start({
      name: 'matrix-bad',
      tasks: [task(h, 'test', ['echo ${{ matrix.nope }}'], { matrix: { node: [20] } })],
    });
    await expect(handle.result()).rejects.toMatchObject({
      cause: {
        type: 'InvalidRunSpec',
        message: expect.stringContaining('tasks.test.steps[0]: ${{ matrix.nope }}: the matrix has no key "nope"'),
      },
    });
  });
});

describe('runs_on', () => {
  const procs: Proc[] = [];
  let pool: string;
  let gpu: string;
  let cpu: string;
  let lh: Harness;

  beforeAll(async () => {
    // Registered runners, whose labels the operator signed into their grants; proofs enforced.
    lh = await startHarness({ requireRunnerProofs: true });
    pool = uniqueName('labels');
    gpu = uniqueName('gpu');
    cpu = uniqueName('cpu');
    const admin = testRunnerAdmin(lh.client, lh.controlQueue);
    for (const [name, labels] of [
      [gpu, { os: 'linux', gpu: 'true' }],
      [cpu, { os: 'linux', gpu: 'false' }],
    ] as const) {
      const { token } = await admin.create({ name, pool, labels, settings: { slots: 2 }, by: 'test' });
      const dir = join(lh.dataDir, name);
      procs.push(
        startRunnerProcess({
          address: lh.address,
          name,
          pool,
          dataDir: dir,
          token,
          env: { RUNFLEET_ALLOW_PLAINTEXT: '1' },
        }),
      );
    }
    for (const name of [gpu, cpu]) {
      let status: string | undefined;
      await until(
        `runner ${name} ready`,
        async () => {
          status = (await admin.describe(name)).record.status;
          return status === 'ready';
        },
        {
          timeoutMs: 120_000,
          everyMs: 500,
          detail: () => `status ${status}; its log: ${procs.map((p) => p.output()).join('\n')}`,
        },
      );
    }
  }, 180_000);
  afterAll(async () => {
    await killAll();
    await lh?.stop();
  });

  it('lands tasks only on a runner with every label, and says so when nobody has them', async () => {
    const t = (name: string, labels: Record<string, unknown>) => ({ name, steps: ['true'], pool, runs_on: labels });
    const handle = await lh.start({
      name: 'labelled',
      tasks: [
        t('g1', { gpu: true }),
        t('g2', { gpu: 'true', os: 'linux' }),
        t('g3', { gpu: true }),
        t('c1', { gpu: false }),
        t('nobody', { gpu: 'tpu' }),
      ],
    });
    const waiting = await lh.waitFor(
      handle,
      (s) => ['g1', 'g2', 'g3', 'c1'].every((n) => s.tasks[n]?.status === 'success') && s.tasks.nobody?.reason !== null,
      120_000,
    );
    for (const n of ['g1', 'g2', 'g3']) expect(waiting.tasks[n]!.runner).toBe(gpu);
    expect(waiting.tasks.c1!.runner).toBe(cpu);
    expect(waiting.tasks.nobody!.status).toBe('pending');
    expect(waiting.tasks.nobody!.reason).toContain(`no runner of pool "${pool}" has the labels gpu=tpu`);
    expect(waiting.tasks.nobody!.reason).toContain(`${gpu} {gpu=true,os=linux} other labels`);
    await handle.executeUpdate(cancelTaskUpdate, { args: [{ task: 'nobody', by: 'tester', reason: 'no tpu' }] });
    const s: RunState = await handle.result();
    expect(s.tasks.nobody!.status).toBe('cancelled');
    expect(s.result).toBe('success');
  }, 240_000);
});
