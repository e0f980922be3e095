/**
 * A run's query answers from the workflow's own state, which learns that a task started only
 * when it ends. The server knows earlier: an execution activity in state STARTED is a running
 * task. This merges that into the state, so `run show` and `run watch` say `running` (with the
 * server's start time) at no cost in history events.
 */
import type { temporal } from '@temporalio/proto';
import { showRunning } from '../run/transitions';
import { timestampIso } from './timestamps';
import type { RunState } from '../types';

type PendingActivity = temporal.api.workflow.v1.IPendingActivityInfo;

const STARTED = 2; // PENDING_ACTIVITY_STATE_STARTED

export function withLiveStatus(state: RunState, pending: readonly PendingActivity[] | null | undefined): RunState {
  for (const activity of pending ?? []) {
    if (activity.activityType?.name !== 'executeTask' || activity.state !== STARTED) continue;
    const match = /^exec\/(.+)\/(\d+)$/.exec(activity.activityId ?? '');
    if (!match) continue;
    const task = state.tasks[match[1] as string];
    // A queued execution has started on its runner only to wait for the task ahead of it.
    if (!task || task.status !== 'reserved' || task.attempts !== Number(match[2]) || task.queuedBehind) continue;
    showRunning(task, timestampIso(activity.lastStartedTime));
  }
  return state;
}
