/**
 * The baselines of the dispatch benchmark: a bare Temporal workflow that runs N activities at once
 * (`Promise.all`) on a task queue of bare workers. Bundled separately from `workflows/`.
 *  - `noop`: each activity is a pure no-op (the headline baseline);
 *  - `spawn`: each activity spawns `/bin/sh -c true` and awaits its exit, the same per-task
 *    process cost as a Runfleet task.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { BaselineActivities } from './baseline-activities';

export type BaselineActivity = 'noop' | 'spawn';

export interface BaselineInput {
  n: number;
  activityTaskQueue: string;
  /** Which activity each of the N tasks runs; `noop` when absent. */
  activity?: BaselineActivity;
}

export interface BaselineResult {
  /** Workflow time (ms since epoch) when the workflow code began: the "ready" instant. */
  startedAtMs: number;
  /** Wall clock (ms since epoch) inside each activity when it started. */
  activityStartsMs: number[];
  /** `spawn` only: per activity, ms from its start to the process's exit. */
  execMs?: number[];
}

export async function baselineWorkflow(input: BaselineInput): Promise<BaselineResult> {
  const startedAtMs = Date.now();
  const { noop, spawnTrue } = proxyActivities<BaselineActivities>({
    taskQueue: input.activityTaskQueue,
    startToCloseTimeout: 60_000,
    retry: { maximumAttempts: 1 },
  });
  if (input.activity === 'spawn') {
    const results = await Promise.all(Array.from({ length: input.n }, () => spawnTrue()));
    return { startedAtMs, activityStartsMs: results.map((r) => r[0]), execMs: results.map((r) => r[1]) };
  }
  const activityStartsMs = await Promise.all(Array.from({ length: input.n }, () => noop()));
  return { startedAtMs, activityStartsMs };
}
