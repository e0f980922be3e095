/**
 * The baselines of the dispatch benchmark: a bare Temporal workflow that runs N activities at once
 * (`Promise.all`) on a task queue of bare workers. Bundled separately from `workflows/`.
 *  - `noop`: each activity is a pure no-op (the headline baseline);
 *  - `spawn`: each activity spawns `/bin/sh -c true` and awaits its exit, the same per-task
 *    process cost as a Runfleet task.
 */
import { continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { BaselineActivities } from './baseline-activities';

export type BaselineActivity = 'noop' | 'spawn';

/**
 * The retry a real user would give these activities: Temporal's default policy (first retry after
 * 1 s, backoff x2, at most 100 s apart), bounded to 5 attempts. With a single attempt, one
 * activity that missed its 60 s start-to-close under load failed the whole workflow (about 3 runs
 * in 10 of the no-op baseline); a retried one shows in the side's `activityRetries`.
 */
export const BASELINE_RETRY = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '100s',
  maximumAttempts: 5,
} as const;

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
    retry: BASELINE_RETRY,
  });
  if (input.activity === 'spawn') {
    const results = await Promise.all(Array.from({ length: input.n }, () => spawnTrue()));
    return { startedAtMs, activityStartsMs: results.map((r) => r[0]), execMs: results.map((r) => r[1]) };
  }
  const activityStartsMs = await Promise.all(Array.from({ length: input.n }, () => noop()));
  return { startedAtMs, activityStartsMs };
}

export interface BaselineWindowInput {
  /** Activities in all, over the whole chain of executions. */
  n: number;
  activityTaskQueue: string;
  /** Which activity each of the N runs; `noop` when absent. */
  activity?: BaselineActivity;
  /** Activities scheduled and not yet completed at once, at most (Temporal's limit is 2,000). */
  maxPending: number;
  /**
   * An execution starts no new activity once its history has this many events; it lets the
   * pending ones complete, then continues as new with the count so far.
   */
  continueAtEvents: number;
  /** Set by the workflow itself when it continues as new. */
  done?: number;
  executions?: number;
  startedAtMs?: number;
}

export interface BaselineWindowResult {
  /** Activities completed over the chain. */
  n: number;
  /** Workflow time (ms since epoch) when the first execution began. */
  startedAtMs: number;
  /** Executions in the chain (1 + continues-as-new). */
  executions: number;
}

/**
 * The bare counterpart of a big Runfleet run: `n` activities (no-op, or each spawning
 * `/bin/sh -c true`) through a sliding window of at
 * most `maxPending` pending ones (one completes, the next is scheduled), continuing as new when
 * the history reaches `continueAtEvents` events and the window has drained. History per execution:
 * `continueAtEvents` + at most `maxPending` activities' remaining events (started, completed) plus
 * workflow tasks; with 5,000 and 1,000 that stays far below the 10,240-event warning.
 */
export async function baselineWindowWorkflow(input: BaselineWindowInput): Promise<BaselineWindowResult> {
  const startedAtMs = input.startedAtMs ?? Date.now();
  const executions = (input.executions ?? 0) + 1;
  const { noop, spawnTrue } = proxyActivities<BaselineActivities>({
    taskQueue: input.activityTaskQueue,
    startToCloseTimeout: 60_000,
    retry: BASELINE_RETRY,
  });
  const one: () => Promise<unknown> = input.activity === 'spawn' ? spawnTrue : noop;
  let done = input.done ?? 0;
  let scheduled = done;
  let pending = 0;
  let full = false;
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      while (!full && pending < input.maxPending && scheduled < input.n) {
        if (workflowInfo().historyLength >= input.continueAtEvents) {
          full = true;
          break;
        }
        scheduled++;
        pending++;
        one().then(() => {
          pending--;
          done++;
          pump();
        }, reject);
      }
      if (pending === 0) resolve();
    };
    pump();
  });
  if (done < input.n) {
    await continueAsNew<typeof baselineWindowWorkflow>({ ...input, done, executions, startedAtMs });
  }
  return { n: done, startedAtMs, executions };
}
