/**
 * The baseline of the dispatch benchmark: a bare Temporal workflow that runs N no-op activities
 * at once (`Promise.all`) on a task queue of bare workers. Bundled separately from `workflows/`.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { BaselineActivities } from './baseline-activities';

export interface BaselineInput {
  n: number;
  activityTaskQueue: string;
}

export interface BaselineResult {
  /** Workflow time (ms since epoch) when the workflow code began: the "ready" instant. */
  startedAtMs: number;
  /** Wall clock (ms since epoch) inside each activity when it started. */
  activityStartsMs: number[];
}

export async function baselineWorkflow(input: BaselineInput): Promise<BaselineResult> {
  const startedAtMs = Date.now();
  const { noop } = proxyActivities<BaselineActivities>({
    taskQueue: input.activityTaskQueue,
    startToCloseTimeout: 60_000,
    retry: { maximumAttempts: 1 },
  });
  const activityStartsMs = await Promise.all(Array.from({ length: input.n }, () => noop()));
  return { startedAtMs, activityStartsMs };
}
