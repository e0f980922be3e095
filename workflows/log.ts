/**
 * Reads a chunk of a task's log from the runner that ran it. Logs stay on the runner (it is the
 * source of truth); this short workflow carries one read to the runner's own queue, so a
 * client needs no network path to the runner, only to Temporal.
 */
import { ActivityFailure, ApplicationFailure, TimeoutFailure, proxyActivities } from '@temporalio/workflow';
import type { LogChunk, RunnerActivities } from '../activities/types';
import { runnerTaskQueue } from '../src/ids';

export interface FetchTaskLogInput {
  runId: string;
  task: string;
  runner: string;
  offset: number;
  limit: number;
}

/** A runner that does not pick the read up in this time is taken as offline. */
const RUNNER_ANSWER_MS = 10_000;

export async function fetchTaskLogWorkflow(input: FetchTaskLogInput): Promise<LogChunk> {
  if (!input || typeof input.runner !== 'string' || typeof input.runId !== 'string' || typeof input.task !== 'string') {
    throw ApplicationFailure.create({
      type: 'InvalidWorkflowInput',
      message: 'fetchTaskLogWorkflow takes {"runId", "task", "runner", "offset", "limit"}',
      nonRetryable: true,
    });
  }
  const runner = proxyActivities<RunnerActivities>({
    taskQueue: runnerTaskQueue(input.runner),
    scheduleToStartTimeout: RUNNER_ANSWER_MS,
    startToCloseTimeout: 10_000,
    retry: { maximumAttempts: 1 },
  });
  try {
    return await runner.readTaskLog({
      runId: input.runId,
      task: input.task,
      offset: Math.max(0, input.offset ?? 0),
      limit: Math.min(Math.max(1, input.limit ?? 65_536), 1_048_576),
    });
  } catch (err) {
    if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure) {
      throw ApplicationFailure.create({
        type: 'NotFound',
        message: `runner "${input.runner}" did not answer in ${RUNNER_ANSWER_MS / 1000}s; its logs are on that machine`,
        nonRetryable: true,
      });
    }
    throw err;
  }
}
