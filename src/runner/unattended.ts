/**
 * Tasks that run on this runner with no execution activity holding them: re-attached after a
 * restart (`recover`), or detached when the server gave up on their execution while they ran (a
 * partition, a watchdog restart). Their activity is what carried the task's timeout (its
 * start-to-close) and a stop of the run (its cancellation) to the runner; without it the runner
 * enforces both itself: the deadline written in the session record when the task started, and
 * the run's own view of the task (its `state` query), asked every few seconds while the task runs.
 *
 * Pure: the runner (workers/runner.ts) arms the timer and asks the run; unit tests drive these.
 */
import { formatDuration } from '../duration';
import { FINAL_TASK_STATUSES, type RunState } from '../types';
import type { SessionRecord, TaskLabels } from './driver';

/** The epoch ms past which the task is killed, or null (a record from before deadlines were recorded). */
export function deadlineOf(record: Pick<SessionRecord, 'deadline'>): number | null {
  if (record.deadline === undefined) return null;
  const at = Date.parse(record.deadline);
  return Number.isNaN(at) ? null : at;
}

/**
 * Why the run no longer waits for this execution's outcome, or null while it does: the task is
 * this attempt, on this runner, and not final. Anything else (the run stopped and cancelled it, a
 * purge failed it, another attempt took over, the task is gone) means nobody will take what it
 * does from now on. `state` null: the run itself is gone.
 */
export function unwantedBecause(
  state: Pick<RunState, 'tasks'> | null,
  labels: Pick<TaskLabels, 'task' | 'attempt' | 'runner'>,
): string | null {
  if (state === null) return 'the run is gone';
  const t = state.tasks[labels.task];
  if (t === undefined) return `the run has no task "${labels.task}"`;
  if (t.attempts !== labels.attempt) return `attempt ${t.attempts} is the run's current one`;
  if (t.runner !== labels.runner)
    return `the run has it on ${t.runner === null ? 'no runner' : `runner "${t.runner}"`}`;
  if (FINAL_TASK_STATUSES.includes(t.status)) return `the task is ${t.status}${t.reason ? `: ${t.reason}` : ''}`;
  return null;
}

/** Whether the run still waits for this execution's outcome (see `unwantedBecause`). */
export function runWants(
  state: Pick<RunState, 'tasks'> | null,
  labels: Pick<TaskLabels, 'task' | 'attempt' | 'runner'>,
): boolean {
  return unwantedBecause(state, labels) === null;
}

/** What the runner tells the run of a task it killed at its deadline (the report's note). */
export function timeoutNote(record: Pick<SessionRecord, 'startedAt' | 'deadline'>): string {
  const deadline = deadlineOf(record) ?? Date.now();
  const limit = formatDuration(Math.max(0, deadline - Date.parse(record.startedAt)));
  return `timed out after ${limit}; the runner killed the process group at its deadline (${record.deadline})`;
}
