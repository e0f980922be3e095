import { describe, expect, it } from 'vitest';
import type { RunState, TaskState } from '../../src/types';
import { deadlineOf, runWants, timeoutNote, unwantedBecause } from '../../src/runner/unattended';

const labels = { task: 'build', attempt: 2, runner: 'r1' };

const base: TaskState = {
  status: 'lost',
  runner: 'r1',
  startedAt: null,
  finishedAt: null,
  exitCode: null,
  reason: null,
  attempts: 2,
  approval: { required: false, approvedBy: null, approvedAt: null },
};

/** A run's view with task `build` as given, or without it. */
function state(t?: Partial<TaskState>): Pick<RunState, 'tasks'> {
  const tasks: Record<string, TaskState> = {};
  if (t !== undefined) tasks['build'] = { ...base, ...t };
  return { tasks };
}

describe('unattended tasks', () => {
  it('the deadline is the recorded one; none in a record from before deadlines', () => {
    expect(deadlineOf({ deadline: '2026-01-01T00:00:30.000Z' })).toBe(Date.parse('2026-01-01T00:00:30.000Z'));
    expect(deadlineOf({})).toBeNull();
    expect(deadlineOf({ deadline: 'not a time' })).toBeNull();
  });

  it('the run wants the attempt while it is its current one, on this runner, and not final', () => {
    for (const status of ['lost', 'reserved', 'running'] as const)
      expect(runWants(state({ status }), labels)).toBe(true);
    for (const status of ['cancelled', 'failed', 'success', 'skipped'] as const)
      expect(runWants(state({ status }), labels)).toBe(false);
    expect(runWants(state({ attempts: 3 }), labels)).toBe(false);
    expect(runWants(state({ runner: 'r2' }), labels)).toBe(false);
    expect(runWants(state({ status: 'pending', runner: null }), labels)).toBe(false);
    expect(runWants(state(), labels)).toBe(false);
    expect(runWants(null, labels)).toBe(false);
  });

  it('says why the run no longer wants it', () => {
    expect(unwantedBecause(state({}), labels)).toBeNull();
    expect(unwantedBecause(state({ status: 'cancelled', reason: 'wrong branch' }), labels)).toBe(
      'the task is cancelled: wrong branch',
    );
    expect(unwantedBecause(state({ attempts: 3 }), labels)).toBe("attempt 3 is the run's current one");
    expect(unwantedBecause(state({ runner: 'r2' }), labels)).toBe('the run has it on runner "r2"');
    expect(unwantedBecause(state({}), { ...labels, task: 'other' })).toBe('the run has no task "other"');
    expect(unwantedBecause(null, labels)).toBe('the run is gone');
  });

  it('says the timeout as the run says one', () => {
    const note = timeoutNote({ startedAt: '2026-01-01T00:00:00.000Z', deadline: '2026-01-01T00:01:30.000Z' });
    expect(note).toBe(
      'timed out after 1m30s; the runner killed the process group at its deadline (2026-01-01T00:01:30.000Z)',
    );
  });
});
