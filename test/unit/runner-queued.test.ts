/**
 * What a run may ask of a runner for a task queued behind another (`queued`, `behind`,
 * `timeoutMs`), attacked as a hostile run would: a `behind` that never runs there, a `timeoutMs`
 * past the execution's start-to-close, a second task queued on one lease. Nothing starts that
 * should not, and a task never gets more time than the server's timer gives it.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRunnerActivities } from '../../activities/runner';
import type { ExecuteRequest } from '../../activities/types';
import type { Driver, DriverRun, SessionRecord } from '../../src/runner/driver';
import { SlotPool } from '../../src/runner/slots';

interface Started {
  run: DriverRun;
  at: number;
}

function setup() {
  const slots = new SlotPool(2, { evictionMs: 30_000, lingerMs: 2_000 });
  const started: Started[] = [];
  const begun: SessionRecord[] = [];
  const driver: Driver = {
    run: async (run) => {
      started.push({ run, at: Date.now() });
      return { exitCode: 0, failedStep: null, aborted: false };
    },
  } as Driver;
  const dataDir = mkdtempSync(join(tmpdir(), 'runfleet-queued-'));
  const activities = createRunnerActivities({
    runner: 'r1',
    pool: 'p',
    dataDir,
    slots,
    drivers: { process: driver },
    sessions: {
      dirFor: (labels) => join(dataDir, 'sessions', `${labels.task}-${labels.attempt}`),
      begin: (record) => void begun.push(record),
      setHandle: () => undefined,
      close: () => undefined,
      lookup: () => ({ state: 'unknown' }),
      refuse: () => undefined,
    },
    bootId: 'boot',
    baseEnv: {},
    detach: () => undefined,
    heartbeatMs: 60_000,
  });
  return { slots, started, begun, activities };
}

function request(task: string, leaseId: string, extra: Partial<ExecuteRequest> = {}): ExecuteRequest {
  return {
    runId: 'run/g/1',
    leaseId,
    attempt: 1,
    task: { name: task, steps: ['true'], pool: 'p', driver: 'process' } as ExecuteRequest['task'],
    ...extra,
  };
}

/** An activity environment with the execution's start-to-close timeout. */
const env = (startToCloseTimeoutMs: number) =>
  new MockActivityEnvironment({ startToCloseTimeoutMs, heartbeatTimeoutMs: 10_000 });

describe('a task queued behind another on its runner', () => {
  it('behind an execution that never runs on the lease: gives up, nothing started or recorded', async () => {
    const { slots, started, begun, activities } = setup();
    const [lease] = slots.grant(1);
    // A start-to-close of the task's 60 s plus 2.5 s: the runner waits 0.5 s (2 s kept back).
    const t0 = Date.now();
    const failed = await env(62_500)
      .run(activities.executeTask, request('b', lease!, { queued: true, behind: 'no-such-task/1', timeoutMs: 60_000 }))
      .catch((err: unknown) => err);
    expect(failed).toMatchObject({ type: 'LeaseExpired' });
    expect(String((failed as Error).message)).toContain('queued behind no-such-task/1');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    expect(started).toEqual([]);
    expect(begun).toEqual([]);
    // The lease is left as it was: idle, its slot still the run's.
    expect(slots.snapshot()).toMatchObject({ idle: 1, running: 0 });
  });

  it('a timeoutMs past the start-to-close is cut to it: the task gets no more time than the server gives', async () => {
    const { slots, started, activities } = setup();
    const [lease] = slots.grant(1);
    const before = Date.now();
    await env(5_000).run(activities.executeTask, request('a', lease!, { timeoutMs: 3_600_000 }));
    expect(started).toHaveLength(1);
    expect(started[0]!.run.deadline).toBeLessThanOrEqual(Date.now() + 5_000);
    expect(started[0]!.run.deadline).toBeGreaterThanOrEqual(before + 5_000);
  });

  it('starts at once behind an execution that already ran there, with its own timeout from then', async () => {
    const { slots, started, activities } = setup();
    const [lease] = slots.grant(1);
    await env(60_000).run(activities.executeTask, request('a', lease!));
    await env(65_000).run(
      activities.executeTask,
      request('b', lease!, { queued: true, behind: 'a/1', timeoutMs: 60_000 }),
    );
    expect(started.map((s) => s.run.labels.task)).toEqual(['a', 'b']);
    const b = started[1]!;
    expect(b.run.deadline! - b.at).toBeLessThanOrEqual(60_000);
    expect(b.run.deadline! - b.at).toBeGreaterThan(59_000);
  });

  it('refuses a second task queued on one lease before anything starts', async () => {
    const { slots, started, activities } = setup();
    const [lease] = slots.grant(1);
    const first = env(62_500)
      .run(activities.executeTask, request('b', lease!, { queued: true, behind: 'a/1', timeoutMs: 60_000 }))
      .catch((err: unknown) => err);
    const second = await env(62_500)
      .run(activities.executeTask, request('c', lease!, { queued: true, behind: 'a/1', timeoutMs: 60_000 }))
      .catch((err: unknown) => err);
    expect(second).toMatchObject({ type: 'LeaseExpired' });
    expect(String((second as Error).message)).toContain('already has a task waiting');
    expect(await first).toMatchObject({ type: 'LeaseExpired' });
    expect(started).toEqual([]);
  });
});
