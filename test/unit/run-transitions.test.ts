/** Every change of a task's status, driven on plain state: the table, attempts, retries, reports. */
import { describe, expect, it } from 'vitest';
import {
  TASK_TRANSITIONS,
  applyOutcome,
  canMove,
  cancelProblem,
  finishTask,
  giveBackTask,
  loseTask,
  reportProblem,
  requeueTask,
  reserveTask,
  retryDelay,
  retryTask,
} from '../../src/run/transitions';
import type { TaskRetry } from '../../src/spec/schema';
import { TASK_STATUSES, type RunState, type TaskState } from '../../src/types';

const T0 = '2025-01-01T00:00:00.000Z';

function pending(): TaskState {
  return {
    status: 'pending',
    runner: null,
    startedAt: null,
    finishedAt: null,
    exitCode: null,
    reason: null,
    attempts: 0,
    approval: { required: false, approvedBy: null, approvedAt: null },
  };
}

const retry = (extra: Partial<TaskRetry> = {}): TaskRetry => ({
  limit: 2,
  backoffMs: 10_000,
  maxBackoffMs: 600_000,
  on: ['failed', 'timeout'],
  ...extra,
});

describe('the transition table', () => {
  it('covers every status, and final statuses go nowhere', () => {
    expect(Object.keys(TASK_TRANSITIONS).sort()).toEqual([...TASK_STATUSES].sort());
    for (const final of ['success', 'failed', 'skipped', 'cancelled'] as const) {
      for (const to of TASK_STATUSES) expect(canMove(final, to)).toBe(false);
    }
  });

  it('refuses a move it does not list, leaving the task as it was', () => {
    const t = pending();
    expect(() => finishTask(t, 'success', null, T0)).toThrow('a task cannot go from pending to success');
    expect(t.status).toBe('pending');
    reserveTask(t, 'r1');
    finishTask(t, 'success', null, T0);
    expect(() => finishTask(t, 'failed', 'late', T0)).toThrow('from success to failed');
    expect(t.status).toBe('success');
  });
});

describe('attempts', () => {
  it('counts one per reservation, and none for an attempt that never started', () => {
    const t = pending();
    expect(reserveTask(t, 'r1')).toBe(1);
    requeueTask(t, 'lease given back', true);
    expect(t).toMatchObject({ status: 'pending', attempts: 0, runner: null, reason: 'lease given back' });
    expect(reserveTask(t, 'r2')).toBe(1);
    requeueTask(t, 'idempotent: again', false);
    expect(t.attempts).toBe(1);
  });

  it('a lost task is given back as a new attempt once its runner never received it', () => {
    const t = pending();
    reserveTask(t, 'r1');
    loseTask(t, 'silent', T0);
    expect(t).toMatchObject({ status: 'lost', lostAt: T0, runner: 'r1' });
    giveBackTask(t, 'r1', 1);
    expect(t.status).toBe('pending');
    expect(t.lostAt).toBeUndefined();
    expect(t.reason).toContain('never received attempt 1');
  });

  it('an outcome reads as success or the failed step', () => {
    const t = pending();
    reserveTask(t, 'r1');
    applyOutcome(t, { exitCode: 3, failedStep: 1, startedAt: T0, finishedAt: T0 }, null, T0);
    expect(t).toMatchObject({ status: 'failed', exitCode: 3, reason: 'step 2 exited with code 3' });
  });
});

describe('retries', () => {
  it('waits backoff, doubling, for at most `limit` retries, only for the causes listed', () => {
    const t = pending();
    expect(retryDelay(undefined, t, 'failed')).toBeNull();
    expect(retryDelay(retry({ on: ['timeout'] }), t, 'failed')).toBeNull();
    expect(retryDelay(retry(), t, 'failed')).toBe(10_000);
    reserveTask(t, 'r1');
    retryTask(t, { outcome: 'failed', exitCode: 1, startedAt: T0, finishedAt: T0, reason: 'exited 1' }, 10_000, T0, 2);
    expect(t).toMatchObject({ status: 'pending', runner: null, retryAt: '2025-01-01T00:00:10.000Z' });
    expect(t.reason).toBe('attempt 1 exited 1; retrying in 10s (retry 1 of 2)');
    expect(retryDelay(retry(), t, 'timeout')).toBe(20_000);
    reserveTask(t, 'r2');
    retryTask(
      t,
      { outcome: 'timeout', exitCode: null, startedAt: T0, finishedAt: T0, reason: 'timed out' },
      20_000,
      T0,
      2,
    );
    expect(retryDelay(retry(), t, 'failed')).toBeNull();
    expect(t.history?.map((a) => [a.attempt, a.runner, a.outcome])).toEqual([
      [1, 'r1', 'failed'],
      [2, 'r2', 'timeout'],
    ]);
    expect(retryDelay(retry({ limit: 5, backoffMs: 400_000 }), t, 'failed')).toBe(600_000);
  });
});

describe('refusals', () => {
  it('cancel: a final task cannot be cancelled; an unknown one is named', () => {
    const t = pending();
    expect(cancelProblem(undefined, 'x')).toBe('no task "x" in this run');
    expect(cancelProblem(t, 'a')).toBeNull();
    reserveTask(t, 'r1');
    expect(cancelProblem(t, 'a')).toBeNull();
    finishTask(t, 'success', null, T0);
    expect(cancelProblem(t, 'a')).toBe('task "a" is success already');
  });

  it('reports: only for the current attempt, from its runner, of a task not final', () => {
    const t = pending();
    reserveTask(t, 'r1');
    const state = { tasks: { a: t } } as unknown as RunState;
    const outcome = { exitCode: 0, failedStep: null, startedAt: T0, finishedAt: T0 };
    expect(reportProblem(state, { task: 'a', attempt: 1, runner: 'r1', outcome })).toBeNull();
    expect(reportProblem(state, { task: 'a', attempt: 2, runner: 'r1', outcome })).toContain('not the current one');
    expect(reportProblem(state, { task: 'a', attempt: 1, runner: 'r2', outcome })).toContain('does not run it');
    expect(reportProblem(state, { task: 'a', attempt: 1, runner: 'r1', outcome: { exitCode: '0' } })).toContain(
      'no outcome',
    );
    expect(reportProblem(state, { task: 'b' })).toBe('no task "b" in this run');
  });
});
