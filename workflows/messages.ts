/** Queries and updates of the run workflow, shared by the workflow and its clients. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { RunState } from '../src/types';

/** The whole run state. */
export const stateQuery = defineQuery<RunState>('state');

/** The run's input as submitted (the spec as written, before defaults). */
export const inputQuery = defineQuery<{ spec: unknown; options?: unknown }>('input');

/** Approves a task that waits with `needs_approval`. */
export interface ApproveTaskRequest {
  task: string;
  by: string;
}
export const approveTaskUpdate = defineUpdate<RunState, [ApproveTaskRequest]>('approveTask');

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
