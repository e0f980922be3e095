/**
 * A runner's slot goes back to the pool as soon as the run has no use for its lease (issue 12):
 * after a run's last task, and after an execution the runner refused or that failed, instead of
 * lingering for the run's next task (lingerMs) or waiting for eviction. Read on the runner's own
 * slot pool the moment the run has ended, well inside the linger.
 *
 * And a ready task is queued behind a busy lease whose last task was short: the runner starts it
 * when the running one ends, with no workflow task in between; behind a long one it gives up
 * (nothing started) and the run reserves again; a stop reaches it while it waits.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunState } from '../../src/types';
import { stopRunSignal } from '../../workflows/run-messages';
import { startHarness, task, type Harness } from '../helpers/harness';

let h: Harness;
beforeAll(async () => {
  // A linger far longer than the test: a slot still held afterwards shows.
  h = await startHarness({ runners: [{ name: 'solo', slots: 1 }] });
});
afterAll(async () => {
  await h?.stop();
});

const slots = () => {
  const runner = h.runners.get('solo');
  if (!runner) throw new Error('no runner solo');
  return runner.slots.snapshot();
};

describe('leases', () => {
  it("frees the slot when a run's last task ends; keeps it for a run's next task meanwhile", async () => {
    const handle = await h.start({
      name: 'chain',
      tasks: [task(h, 'first', ['true']), task(h, 'second', ['true'], { depends: ['first'] })],
    });
    const s = await handle.result();
    expect(s.result).toBe('success');
    // Both ran on one lease: the second reused the first's (one reservation for the run).
    expect(s.tasks['first']?.runner).toBe('solo');
    expect(slots()).toMatchObject({ capacity: 1, free: 1, idle: 0, running: 0 });
  });

  it('frees the slot of an execution the runner refused before starting it', async () => {
    // Artifacts on a runner without an object store: refused, nothing started.
    const handle = await h.start({
      name: 'refused',
      tasks: [task(h, 'keeps', ['true'], { artifacts: ['out'] })],
    });
    const s = await handle.result();
    expect(s.tasks['keeps']?.status).toBe('failed');
    expect(s.tasks['keeps']?.reason).toContain('has no object store');
    expect(slots()).toMatchObject({ free: 1, idle: 0 });
  });

  it('runs one-task runs queued behind a long one on a single slot, and leaves the slot free', async () => {
    const long = await h.start({ name: 'long', tasks: [task(h, 'hold', ['sleep 3'])] });
    const shorts = await Promise.all(
      [1, 2, 3, 4].map((i) => h.start({ name: `short-${i}`, tasks: [task(h, 't', ['true'])] })),
    );
    await long.result();
    for (const s of shorts) expect((await s.result()).result).toBe('success');
    expect(slots()).toMatchObject({ free: 1, idle: 0 });
  });

  it('queues ready tasks behind the busy lease: each starts as the one before ends, and runs once', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `t${i}`);
    const handle = await h.start({ name: 'queued', tasks: names.map((n) => task(h, n, ['true'])) }, QUEUE_AT_ONCE);
    const s: RunState = await handle.result();
    expect(s.result).toBe('success');
    for (const n of names) expect(s.tasks[n], n).toMatchObject({ status: 'success', attempts: 1, runner: 'solo' });
    const execs = await executions(handle);
    // One slot: without queueing at most one execution is ever out. Queued ones were sent while
    // another ran, and none was refused (each started on the lease the one before left).
    expect(execs.queued.length).toBeGreaterThan(0);
    expect(execs.maxOutstanding).toBe(2);
    expect(execs.failed).toEqual([]);
    expect(slots()).toMatchObject({ free: 1, idle: 0 });
  });

  it('a task queued behind a long one gives up waiting, nothing started, and runs once later', async () => {
    // `short` makes the lease one whose last task was short while `other` waits for a slot (the
    // runner is full); `long` is queued behind `other`, and `after` behind `long`: it waits its
    // 3 s, is given back and reserved again.
    const handle = await h.start(
      {
        name: 'behind-long',
        tasks: [
          task(h, 'short', ['true']),
          task(h, 'other', ['true']),
          task(h, 'long', ['sleep 6'], { depends: ['short'] }),
          task(h, 'after', ['true'], { depends: ['short'] }),
        ],
      },
      QUEUE_AT_ONCE,
    );
    const s: RunState = await handle.result();
    expect(s.result).toBe('success');
    const execs = await executions(handle);
    const queuedAfter = execs.queued.find((id) => id.startsWith('exec/after/'));
    expect(queuedAfter, `queued: ${execs.queued.join(' ')}`).toBeDefined();
    expect(execs.failed).toContainEqual(expect.objectContaining({ id: queuedAfter, type: 'LeaseExpired' }));
    // Given back before it started: the attempt does not count, and it ran once.
    expect(s.tasks.after).toMatchObject({ status: 'success', attempts: 1 });
    expect(s.tasks.after!.history ?? []).toEqual([]);
    expect(execs.queued.filter((id) => id.startsWith('exec/after/'))).toHaveLength(1);
  });

  it('a stop reaches a task queued behind a running one long before a heartbeat would; the queued one never starts', async () => {
    // Heartbeat timeout 60 s: the runner beats 20 s apart, so only the poke brings the stop within 6 s.
    const handle = await h.start(
      {
        name: 'stop-queued',
        tasks: [
          task(h, 'short', ['true']),
          task(h, 'other', ['true']),
          task(h, 'long', ['sleep 60'], { depends: ['short'] }),
          task(h, 'waits', ['true'], { depends: ['short'] }),
        ],
      },
      { ...QUEUE_AT_ONCE, heartbeatTimeout: 60_000 },
    );
    await h.waitFor(
      handle,
      (s) => s.tasks.long?.status === 'running' && s.tasks.waits?.queuedBehind === 'long',
      30_000,
    );
    const stoppedAt = Date.now();
    await handle.signal(stopRunSignal, { reason: 'enough', by: 'test' });
    const s: RunState = await handle.result();
    expect(Date.now() - stoppedAt).toBeLessThan(6_000);
    expect(s.result).toBe('stopped');
    expect(s.tasks.long!.status).toBe('cancelled');
    expect(s.tasks.waits!.status).toBe('cancelled');
    expect(s.tasks.waits!.startedAt ?? null).toBeNull();
    expect((await executions(handle)).queued.some((id) => id.startsWith('exec/waits/'))).toBe(true);
    expect(slots()).toMatchObject({ running: 0 });
  });
});

/** Queue behind a busy lease as soon as a reservation is out (the default waits 0.5 s for one). */
const QUEUE_AT_ONCE = { queueBehindAfter: 0.001 };

/** What the run's history says of its executions: which were queued, how many were out at once, which failed. */
async function executions(handle: WorkflowHandle): Promise<{
  queued: string[];
  maxOutstanding: number;
  failed: { id: string; type: string }[];
}> {
  const history = await handle.fetchHistory();
  const byEvent = new Map<string, string>();
  const queued: string[] = [];
  const failed: { id: string; type: string }[] = [];
  let outstanding = 0;
  let maxOutstanding = 0;
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled && scheduled.activityType?.name === 'executeTask') {
      const id = scheduled.activityId ?? '';
      byEvent.set(String(e.eventId), id);
      const payload = scheduled.input?.payloads?.[0]?.data;
      const req = payload ? (JSON.parse(Buffer.from(payload).toString('utf8')) as { queued?: boolean }) : {};
      if (req.queued === true) queued.push(id);
      outstanding++;
      maxOutstanding = Math.max(maxOutstanding, outstanding);
    }
    const ended =
      e.activityTaskCompletedEventAttributes ??
      e.activityTaskFailedEventAttributes ??
      e.activityTaskTimedOutEventAttributes ??
      e.activityTaskCanceledEventAttributes;
    const id = ended ? byEvent.get(String(ended.scheduledEventId)) : undefined;
    if (id === undefined) continue;
    outstanding--;
    const failure = e.activityTaskFailedEventAttributes?.failure;
    if (failure)
      failed.push({
        id,
        type: failure.cause?.applicationFailureInfo?.type ?? failure.applicationFailureInfo?.type ?? '',
      });
  }
  return { queued, maxOutstanding, failed };
}
