/**
 * Lost and found: the runner is the source of truth for a task the run lost track of. A runner
 * process is killed with SIGKILL mid-task (it stops heartbeating); the test then plays the
 * restarted runner and the registry by sending the run's `taskReport` and `runnerPurged`
 * signals, as they will. An execution lost on its way to the runner (the server handed it out,
 * the runner never got it) is asked about, and the real runner's answer settles it. Runs pinned
 * to one runner are here too (scheduled runs).
 */
import { CompleteAsyncError } from '@temporalio/activity';
import { defaultPayloadConverter } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPoolActivities } from '../../activities/pool';
import { taskTable } from '../../src/cli/render';
import { SessionStore } from '../../src/runner/sessions';
import { SlotPool } from '../../src/runner/slots';
import { pinnedTaskQueue, poolTaskQueue, runnerTaskQueue, runnerWorkflowId } from '../../src/ids';
import type { RunState, TaskOutcome } from '../../src/types';
import { runnerPurgedSignal, stopRunSignal, taskReportSignal, type TaskReport } from '../../workflows/run-messages';
import { recordQuery } from '../../workflows/runner-messages';
import { startHarness, type Harness } from '../helpers/harness';
import { sharedFile } from '../helpers/shared-files';
import { killAll, registerRunner, startRunnerProcess } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  await h?.stop();
});

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

const T = (offsetMs = 0) => new Date(Date.now() + offsetMs).toISOString();
const outcome = (exitCode: number, failedStep: number | null = null): TaskOutcome => ({
  exitCode,
  failedStep,
  startedAt: T(-5_000),
  finishedAt: T(),
});

interface Victim {
  name: string;
  pool: string;
  counter: string;
  handle: WorkflowHandle;
}

/**
 * Starts a run whose task `deploy` runs on a runner process, waits until it runs (its side effect
 * written), and kills that runner with SIGKILL. `tasks` are added to the run (pool filled in).
 */
async function runAndKill(
  tasks: Record<string, unknown>[],
  heartbeatTimeout: string,
  deploySteps: (counter: string) => string[] = (c) => [`echo ran >> ${c}`, 'sleep 2'],
): Promise<Victim> {
  const name = uniqueName('victim');
  const pool = uniqueName('lf-pool');
  const dir = join(h.dataDir, name);
  mkdirSync(dir, { recursive: true });
  const counter = sharedFile(h.dataDir, `${name}.count`);
  // One slot: the run's other tasks wait for the helper runner, never for the victim.
  const token = await registerRunner(h.client, h.controlQueue, { name, pool, settings: { slots: 1 } });
  const runner = startRunnerProcess({ address: h.address, name, pool, dataDir: dir, token });
  const handle = await h.start(
    {
      name: 'lost-and-found',
      group: '/test/lost-and-found',
      tasks: [{ name: 'deploy', steps: deploySteps(counter), pool }, ...tasks.map((t) => ({ pool, ...t }))],
    },
    { heartbeatTimeout },
  );
  await h.waitFor(handle, (s) => s.tasks.deploy?.status === 'running' && lines(counter).length === 1, 90_000);
  runner.kill('SIGKILL');
  await runner.exited;
  return { name, pool, counter, handle };
}

const report = (v: Victim, extra: Partial<TaskReport> = {}): TaskReport => ({
  task: 'deploy',
  attempt: 1,
  runner: v.name,
  outcome: outcome(0),
  note: 'finished while the runner was down',
  ...extra,
});

describe('lost tasks', () => {
  it('a lost task holds its dependents until its runner reports success; it ran once', async () => {
    const v = await runAndKill(
      [
        { name: 'after', steps: ['true'], depends: ['deploy'] },
        { name: 'lint', steps: ['true'] },
      ],
      '3s',
    );
    // Another runner of the pool serves the other branches; it never gets the lost task.
    await h.startRunner({ name: uniqueName('helper'), pool: v.pool });

    const lost = await h.waitFor(
      v.handle,
      (s) => s.tasks.deploy?.status === 'lost' && s.tasks.lint?.status === 'success',
      60_000,
    );
    expect(lost.tasks.deploy!.reason).toContain(`runner "${v.name}" stopped heartbeating (silent for 3s)`);
    expect(lost.tasks.deploy!.runner).toBe(v.name);
    expect(lost.tasks.deploy!.lostAt).toEqual(expect.any(String));
    expect(lost.tasks.after!.status).toBe('pending');
    expect(lost.phase).toBe('running');
    expect(taskTable(lost)).toContain(`lost on runner ${v.name} since ${lost.tasks.deploy!.lostAt!.slice(0, 4)}`);
    expect(taskTable(lost)).toContain(`waiting for the runner to report, or for \`runfleet runner purge ${v.name}\``);

    // The runner's registry knows which of its tasks this run waits for.
    const registry = h.client.workflow.getHandle(runnerWorkflowId(v.name));
    const ref = { runWorkflowId: v.handle.workflowId, task: 'deploy', attempt: 1 };
    await until(
      'the registry to record the lost task',
      async () => (await registry.query(recordQuery)).lostTasks.some((t) => t.task === 'deploy'),
      20_000,
    );
    expect((await registry.query(recordQuery)).lostTasks).toEqual([ref]);

    // Nothing moves while the runner is away.
    await new Promise((r) => setTimeout(r, 2_000));
    const still = await h.state(v.handle);
    expect(still.tasks.deploy!.status).toBe('lost');
    expect(still.tasks.after!.status).toBe('pending');
    expect(still.phase).toBe('running');

    await v.handle.signal(taskReportSignal, report(v));
    await v.handle.signal(taskReportSignal, report(v, { outcome: outcome(1, 0) })); // a duplicate: ignored
    const s: RunState = await v.handle.result();
    expect(s.tasks.deploy!.status).toBe('success');
    expect(s.tasks.deploy!.exitCode).toBe(0);
    expect(s.tasks.deploy!.reason).toBe(
      `runner "${v.name}" reported it after it came back (finished while the runner was down)`,
    );
    expect(s.tasks.deploy!.attempts).toBe(1);
    expect(s.tasks.after!.status).toBe('success');
    expect(s.result).toBe('success');
    expect(s.phase).toBe('finished');
    expect(lines(v.counter)).toEqual(['ran']); // executed exactly once
    // Found again: the registry forgets it.
    await until(
      'the registry to forget the lost task',
      async () => (await registry.query(recordQuery)).lostTasks.length === 0,
      20_000,
    );
  });

  it('takes a report that comes before the execution times out, and ignores the timeout after it', async () => {
    const v = await runAndKill([{ name: 'after', steps: ['true'], depends: ['deploy'] }], '15s');
    await h.startRunner({ name: uniqueName('helper'), pool: v.pool });
    const reportedAt = Date.now();
    await v.handle.signal(taskReportSignal, report(v, { note: 're-attached, it ended' }));

    // Applied at once, long before the 15s heartbeat timeout: the dependent runs.
    const found = await h.waitFor(v.handle, (s) => s.tasks.after?.status === 'success', 14_000);
    expect(Date.now() - reportedAt).toBeLessThan(15_000);
    expect(found.tasks.deploy!.status).toBe('success');
    expect(found.tasks.deploy!.lostAt).toBeUndefined();

    // The run ends once the dead execution times out, which changes nothing.
    const s: RunState = await v.handle.result();
    expect(Date.now() - reportedAt).toBeGreaterThanOrEqual(10_000);
    expect(s.tasks.deploy!.status).toBe('success');
    expect(s.tasks.deploy!.reason).toBe(`runner "${v.name}" reported it after it came back (re-attached, it ended)`);
    expect(s.tasks.deploy!.lostAt).toBeUndefined();
    expect(s.result).toBe('success');
    expect(lines(v.counter)).toEqual(['ran']);
  });

  it('a purge of the runner fails its lost task with the reason; the on_failure dependent runs', async () => {
    const v = await runAndKill(
      [
        { name: 'rollback', steps: ['true'], depends: [{ task: 'deploy', conditions: ['on_failure'] }] },
        { name: 'announce', steps: ['true'], depends: ['deploy'] },
      ],
      '3s',
    );
    await h.waitFor(v.handle, (s) => s.tasks.deploy?.status === 'lost', 60_000);
    await h.startRunner({ name: uniqueName('helper'), pool: v.pool });
    await v.handle.signal(runnerPurgedSignal, { runner: v.name, reason: 'the disk died', by: 'alice' });

    const s: RunState = await v.handle.result();
    expect(s.tasks.deploy!.status).toBe('failed');
    expect(s.tasks.deploy!.reason).toBe(`runner "${v.name}" was purged by alice: the disk died`);
    expect(s.tasks.rollback!.status).toBe('success');
    expect(s.tasks.announce!.status).toBe('skipped');
    expect(s.result).toBe('failed');
    expect(lines(v.counter)).toEqual(['ran']);
  });

  it('ignores stale, foreign and malformed reports; a failure report then applies like a completion', async () => {
    const v = await runAndKill(
      [{ name: 'rollback', steps: ['true'], depends: [{ task: 'deploy', conditions: ['on_failure'] }] }],
      '3s',
    );
    await h.waitFor(v.handle, (s) => s.tasks.deploy?.status === 'lost', 60_000);
    await h.startRunner({ name: uniqueName('helper'), pool: v.pool });

    await v.handle.signal(taskReportSignal, report(v, { attempt: 2 }));
    await v.handle.signal(taskReportSignal, report(v, { attempt: 0 }));
    await v.handle.signal(taskReportSignal, report(v, { runner: 'someone-else' }));
    await v.handle.signal(taskReportSignal, report(v, { task: 'no-such-task' }));
    await v.handle.signal(taskReportSignal, { task: 'deploy', attempt: 1, runner: v.name } as unknown as TaskReport);
    await v.handle.signal(runnerPurgedSignal, { runner: 'someone-else', reason: 'gone', by: 'bob' });
    // A query after the signals sees them all applied (signals are handled in order).
    const after = await h.state(v.handle);
    expect(after.tasks.deploy!.status).toBe('lost');
    expect(after.tasks.rollback!.status).toBe('pending');
    expect(after.phase).toBe('running');

    await v.handle.signal(taskReportSignal, report(v, { outcome: outcome(3, 1), note: 'found its exit status' }));
    const s: RunState = await v.handle.result();
    expect(s.tasks.deploy!.status).toBe('failed');
    expect(s.tasks.deploy!.exitCode).toBe(3);
    expect(s.tasks.deploy!.reason).toBe(
      `step 2 exited with code 3; runner "${v.name}" reported it after it came back (found its exit status)`,
    );
    expect(s.tasks.rollback!.status).toBe('success');
    expect(s.result).toBe('failed');
  });
});

describe('lost tasks across continue-as-new', () => {
  it('a run waiting only on a lost task continues as new, and the report reaches the new run', async () => {
    const v = await runAndKill([{ name: 'after', steps: ['true'], depends: ['deploy'] }], '3s');
    await h.waitFor(v.handle, (s) => s.tasks.deploy?.status === 'lost', 60_000);
    await h.startRunner({ name: uniqueName('helper'), pool: v.pool });
    const firstRunId = (await v.handle.describe()).runId;

    // Grow the history past the run's continue-as-new threshold (7,000 events) with reports the
    // run ignores (a task it does not have), then wake its loop with a purge of another runner.
    const historyLength = async () => Number((await v.handle.describe()).raw.workflowExecutionInfo?.historyLength);
    const junk = report(v, { task: 'no-such-task' });
    while ((await historyLength()) < 7_100) {
      for (let i = 0; i < 10; i++) {
        await Promise.all(Array.from({ length: 20 }, () => v.handle.signal(taskReportSignal, junk)));
      }
    }
    await v.handle.signal(runnerPurgedSignal, { runner: 'someone-else', reason: 'wake up', by: 'test' });
    await until('the run to continue as new', async () => (await v.handle.describe()).runId !== firstRunId, 60_000);
    // The drain did not wait on the lost task: the run continued as new, still waiting for it.
    expect((await v.handle.describe()).runId).not.toBe(firstRunId);
    const resumed = await h.state(v.handle);
    expect(resumed.tasks.deploy!.status).toBe('lost');
    expect(resumed.tasks.deploy!.lostAt).toEqual(expect.any(String));
    expect(resumed.tasks.after!.status).toBe('pending');
    expect(await historyLength()).toBeLessThan(100);

    await v.handle.signal(taskReportSignal, report(v));
    const s: RunState = await v.handle.result();
    expect(s.tasks.deploy!.status).toBe('success');
    expect(s.tasks.after!.status).toBe('success');
    expect(s.result).toBe('success');
    expect(lines(v.counter)).toEqual(['ran']);
  });
});

/**
 * Starts a run of one task `deploy` whose first execution is lost on its way to runner `name`:
 * a stand-in for the runner grants the lease and takes the execution, which then never runs and
 * never heartbeats (what the server sees when a poll response does not arrive). Returns once the
 * run marks the task lost, with the stand-in gone and nothing recorded by the runner.
 */
async function loseOnTheWay(name: string, pool: string, counter: string): Promise<WorkflowHandle> {
  const connection = await NativeConnection.connect({ address: h.address });
  let taken!: () => void;
  const swallowed = new Promise<void>((resolve) => (taken = resolve));
  const slots = new SlotPool(1, { evictionMs: 30_000, lingerMs: 2_000 });
  const standIn = [
    {
      taskQueue: poolTaskQueue(pool),
      activities: createPoolActivities({ runner: name, taskQueue: runnerTaskQueue(name), slots }),
    },
    {
      taskQueue: runnerTaskQueue(name),
      activities: {
        executeTask: async () => {
          taken();
          throw new CompleteAsyncError(); // started on the server, never seen by the runner
        },
      },
    },
  ];
  const workers = await Promise.all(
    standIn.map((w) => Worker.create({ connection, namespace: 'default', ...w, shutdownGraceTime: 1_000 })),
  );
  const running = workers.map((w) => w.run());
  try {
    const handle = await h.start(
      {
        name: 'lost-on-the-way',
        group: '/test/lost-and-found',
        tasks: [{ name: 'deploy', steps: [`echo ran >> ${counter}`], pool }],
      },
      { heartbeatTimeout: '3s' },
    );
    await swallowed;
    for (const w of workers) w.shutdown();
    await Promise.all(running);
    const lost = await h.waitFor(handle, (s) => s.tasks.deploy?.status === 'lost', 30_000);
    expect(lost.tasks.deploy!.runner).toBe(name);
    expect(lost.tasks.deploy!.attempts).toBe(1);
    return handle;
  } finally {
    await connection.close();
  }
}

describe('an execution lost on its way to the runner', () => {
  it('the runner says it never received it: the task runs again, once, and the late attempt is refused', async () => {
    const [name, pool] = [uniqueName('transit'), uniqueName('transit-pool')];
    const counter = sharedFile(h.dataDir, `${name}.count`);
    const handle = await loseOnTheWay(name, pool, counter);

    // The real runner comes up under that name: it answers the run's question from its records.
    await h.startRunner({ name, pool, slots: 1 });
    const s: RunState = await handle.result();
    expect(s.result).toBe('success');
    expect(s.tasks.deploy!.status).toBe('success');
    expect(s.tasks.deploy!.attempts).toBe(2);
    expect(s.tasks.deploy!.runner).toBe(name);
    expect(lines(counter)).toEqual(['ran']);

    // The runner refuses attempt 1 from now on, should it ever arrive.
    const store = new SessionStore(join(h.dataDir, name));
    expect(store.lookup({ run: handle.workflowId, task: 'deploy', attempt: 1 })).toEqual({ state: 'refused' });
    expect(store.lookup({ run: handle.workflowId, task: 'deploy', attempt: 2 })).toMatchObject({
      state: 'ended',
      outcome: { exitCode: 0 },
    });
    // The run asked once, and the runner answered "never received".
    const events = (await handle.fetchHistory()).events ?? [];
    const asked = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'lookupTask');
    expect(asked.map((e) => e.activityTaskScheduledEventAttributes?.activityId)).toEqual(['lookup/deploy/1/1']);
    const answer = events.find(
      (e) => Number(e.activityTaskCompletedEventAttributes?.scheduledEventId) === Number(asked[0]!.eventId),
    );
    const payload = answer?.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
    expect(defaultPayloadConverter.fromPayload(payload!)).toEqual({ known: false });
  });

  it('the runner ran it and kept its outcome: that outcome settles the task, nothing runs again', async () => {
    const [name, pool] = [uniqueName('transit'), uniqueName('transit-pool')];
    const counter = sharedFile(h.dataDir, `${name}.count`);
    const handle = await loseOnTheWay(name, pool, counter);

    // What a runner leaves when a task ended but its completion was refused (the server had
    // timed the execution out): the record closed with the outcome.
    const store = new SessionStore(join(h.dataDir, name));
    const labels = { run: handle.workflowId, task: 'deploy', attempt: 1, runner: name, pool };
    store.close(labels, outcome(4, 0));
    await h.startRunner({ name, pool, slots: 1 });
    const s: RunState = await handle.result();
    expect(s.tasks.deploy!.status).toBe('failed');
    expect(s.tasks.deploy!.exitCode).toBe(4);
    expect(s.tasks.deploy!.attempts).toBe(1);
    expect(s.tasks.deploy!.reason).toBe(
      `step 1 exited with code 4; runner "${name}" told it after the server lost track of it`,
    );
    expect(lines(counter)).toEqual([]);
  });
});

describe('pinned runs', () => {
  it('every task of a run pinned to a runner goes to that runner only', async () => {
    const pool = uniqueName('pin-pool');
    const [a, b] = [uniqueName('pin-a'), uniqueName('pin-b')];
    await h.startRunner({ name: a, pool, slots: 4 });
    const runnerB = await h.startRunner({ name: b, pool, slots: 4 });
    // B's pinned reservation queue, served with B's own slots and reservation activity. (Runner
    // processes serve it themselves; a second poller of the same runner changes nothing.)
    const connection = await NativeConnection.connect({ address: h.address });
    const worker = await Worker.create({
      connection,
      namespace: 'default',
      taskQueue: pinnedTaskQueue(b),
      activities: createPoolActivities({ runner: b, taskQueue: runnerTaskQueue(b), slots: runnerB.slots }),
    });
    try {
      await worker.runUntil(async () => {
        const handle = await h.start(
          {
            name: 'pinned',
            group: '/test/lost-and-found',
            tasks: Array.from({ length: 6 }, (_, i) => ({ name: `t${i}`, steps: ['true'], pool })),
          },
          { runner: b },
        );
        const s: RunState = await handle.result();
        expect(s.result).toBe('success');
        expect(Object.values(s.tasks).map((t) => t.runner)).toEqual(Array(6).fill(b));
      });
    } finally {
      await connection.close();
    }
  });

  it('a pinned run waits for its runner and says so; option values are checked like runner names', async () => {
    const handle = await h.start(
      { name: 'pinned-ghost', group: '/test/lost-and-found', tasks: [{ name: 'only', steps: ['true'], pool: h.pool }] },
      { runner: 'ghost-runner', reservationTimeout: '1s' },
    );
    const waiting = await h.waitFor(handle, (s) => (s.tasks.only?.reason ?? '').includes('waiting for runner'));
    expect(waiting.tasks.only!.reason).toContain('waiting for runner "ghost-runner", which this run is pinned to');
    await handle.signal(stopRunSignal, { reason: 'no such runner', by: 'test' });
    expect((await handle.result()).result).toBe('stopped');

    const bad = await h.start(
      { name: 'pinned-bad', group: '/test/lost-and-found', tasks: [{ name: 'only', steps: ['true'], pool: h.pool }] },
      { runner: '-not a name' },
    );
    await expect(bad.result()).rejects.toMatchObject({
      cause: { type: 'InvalidWorkflowInput', message: expect.stringContaining('invalid run options') },
    });
  });
});
