/**
 * The baseline of bench/runners.ts: the obvious bare-Temporal liveness check, one workflow per
 * runner that every `everyMs` runs a short `ping` activity (the baselines' `noop`) on that
 * runner's own queue: a timer and an activity, two workflow tasks per round. Bundled separately
 * from `workflows/`.
 */
import { continueAsNew, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { BaselineActivities } from './baseline-activities';

export interface LivenessInput {
  /** The runner's own task queue (a bare worker serving `noop`). */
  queue: string;
  everyMs: number;
}

/** Continue as new well before the history grows large (each round adds ~9 events). */
const ROUNDS_PER_RUN = 500;

export async function livenessWorkflow(input: LivenessInput): Promise<void> {
  const { noop } = proxyActivities<BaselineActivities>({
    taskQueue: input.queue,
    // A ping: a worker that does not take it in 10 s is not there.
    scheduleToCloseTimeout: '10s',
    retry: { maximumAttempts: 1 },
  });
  for (let i = 0; i < ROUNDS_PER_RUN && !workflowInfo().continueAsNewSuggested; i++) {
    await sleep(input.everyMs);
    try {
      await noop();
    } catch {
      // Missed: a real design would mark the runner lost here; the bench only counts the cost.
    }
  }
  await continueAsNew<typeof livenessWorkflow>(input);
}
