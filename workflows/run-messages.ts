/** Queries and updates of the run workflow, shared by the workflow and its clients. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { RunState, TaskOutcome } from '../src/types';

/** The whole run state. */
export const stateQuery = defineQuery<RunState>('state');

/** The run's input as submitted (the spec as written, before defaults). */
export const inputQuery = defineQuery<{ spec: unknown; options?: unknown }>('input');

/**
 * The run-level env, for a runner that runs one of the run's tasks: a large env is sent to
 * runners by reference (`ExecuteRequest.runEnvRef`) and read once per run with this query, not
 * copied into every task's input (and history). Answered only to a runner that has a task of the
 * run, encrypted with that runner's own key.
 */
export interface RunEnvRequest {
  runner: string;
}
export const runEnvQuery = defineQuery<Record<string, string>, [RunEnvRequest]>('runEnv');

/**
 * Approves a task that waits with `needs_approval`. `operator` signs the approval
 * (`ApprovalStatement` of src/security/statements.ts) with the operator key; a control worker
 * checks it before the approval applies, so namespace access alone cannot approve.
 */
export interface ApproveTaskRequest {
  task: string;
  by: string;
  operator?: { at: string; nonce: string; signature: string };
}
export const approveTaskUpdate = defineUpdate<RunState, [ApproveTaskRequest]>('approveTask');

/**
 * Cancels one task: a task not started is cancelled at once, a running one is killed by its
 * runner, a lost one stops being waited for. Its dependents then follow their conditions (a
 * cancelled parent counts as skipped). Answers with the run's state; refused (with the reason)
 * for a task that is final already.
 */
export interface CancelTaskRequest {
  task: string;
  by: string;
  reason: string;
}
export const cancelTaskUpdate = defineUpdate<RunState, [CancelTaskRequest]>('cancelTask');

/** Stops a run with a reason: running tasks are killed on their runners, pending ones cancelled. */
export interface StopRunRequest {
  reason: string;
  by: string;
}
export const stopRunSignal = defineSignal<[StopRunRequest]>('stop');

/** A changegroup lets a queued run start (see `admission` in the run input). */
export const admitSignal = defineSignal('admit');

/** A run with an admission gives its changegroup slot back when it ends. */
export interface ReleaseSignal {
  runId: string;
  result: string;
}
export const releaseSignal = defineSignal<[ReleaseSignal]>('release');

/**
 * A runner tells the run how a task it ran ended, after the run lost track of it: the runner
 * restarted and found the task finished, or re-attached to it and it finished later. Taken when
 * `attempt` and `runner` are the task's current ones and the task is lost (or its execution has
 * not timed out yet); anything else (a duplicate, a stale attempt) is ignored. Nothing runs again.
 */
export interface TaskReport {
  task: string;
  attempt: number;
  runner: string;
  outcome: TaskOutcome;
  /** What the runner knows of how it found the task (e.g. "finished while the runner was down"). */
  note?: string;
  /**
   * The runner's signature over the report (`src/security/runner-proof.ts`): a report without a
   * proof that the runner's registered signing key verifies is refused, not applied.
   */
  proof?: string;
}
export const taskReportSignal = defineSignal<[TaskReport]>('taskReport');

/** The runner is gone for good (`runfleet runner purge`): the run's tasks lost on it fail. */
export interface RunnerPurgedRequest {
  runner: string;
  reason: string;
  by: string;
}
export const runnerPurgedSignal = defineSignal<[RunnerPurgedRequest]>('runnerPurged');
