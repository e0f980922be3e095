/** Queries, signals and updates of the run workflow, shared by the workflow and its clients. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { RunState } from '../src/types';

/** The whole run state. */
export const stateQuery = defineQuery<RunState>('state');

/** A runner confirms it is about to start a task (sent before the first process is spawned). */
export interface TaskStartedSignal {
  task: string;
  attempt: number;
  runner: string;
  startedAt: string;
}
export const taskStartedSignal = defineSignal<[TaskStartedSignal]>('taskStarted');

/** Approves a task that waits with `needs_approval`. */
export interface ApproveTaskRequest {
  task: string;
  by: string;
}
export const approveTaskUpdate = defineUpdate<RunState, [ApproveTaskRequest]>('approveTask');
