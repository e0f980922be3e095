/**
 * Reads a chunk of a task attempt's log for a client, which needs a path to Temporal only:
 * from the runner that ran it (its own queue) while the task runs, from the object store (an
 * activity of the control workers, which hold its credentials) once it has ended or when the
 * runner does not answer. Both count the same bytes, so a follower moves from one to the other.
 */
import { ActivityFailure, ApplicationFailure, TimeoutFailure, proxyActivities } from '@temporalio/workflow';
import type { LogChunk, RunnerActivities, StoredLogAnswer, TaskLogStoreActivities } from '../activities/types';
import { runnerTaskQueue } from '../src/ids';
import { invalidStart } from './start-checks';

export interface FetchTaskLogInput {
  runId: string;
  task: string;
  runner: string;
  offset: number;
  limit: number;
  /** The execution attempt (each has its own log). Default 1. */
  attempt?: number;
  /** The attempt has ended: its log is whole in the store, unless its runner never got to ship it. */
  final?: boolean;
}

/** A runner that does not pick the read up in this time is taken as offline. */
const RUNNER_ANSWER_MS = 10_000;

const store = proxyActivities<TaskLogStoreActivities>({
  // A store read lists an attempt's parts and reads one or two: seconds, unless the store is down.
  startToCloseTimeout: 20_000,
  retry: { maximumAttempts: 2 },
});

export async function fetchTaskLogWorkflow(input: FetchTaskLogInput): Promise<LogChunk> {
  if (!input || typeof input.runner !== 'string' || typeof input.runId !== 'string' || typeof input.task !== 'string') {
    invalidStart('fetchTaskLogWorkflow takes {"runId", "task", "runner", "offset", "limit", "attempt", "final"}');
  }
  const offset = Math.max(0, Number.isInteger(input.offset) ? input.offset : 0);
  const limit = Math.min(Math.max(1, Number.isInteger(input.limit) ? input.limit : 65_536), 1_048_576);
  const attempt = Number.isInteger(input.attempt) && (input.attempt ?? 0) >= 1 ? (input.attempt as number) : 1;
  const runner = proxyActivities<RunnerActivities>({
    taskQueue: runnerTaskQueue(input.runner),
    scheduleToStartTimeout: RUNNER_ANSWER_MS,
    startToCloseTimeout: 10_000,
    retry: { maximumAttempts: 1 },
  });
  const fromStore = () => store.readStoredLog({ runId: input.runId, task: input.task, attempt, offset, limit });
  /** The runner's answer; null when it did not pick the read up (offline, gone). */
  const fromRunner = async (): Promise<LogChunk | null> => {
    try {
      return await runner.readTaskLog({ runId: input.runId, task: input.task, attempt, offset, limit });
    } catch (err) {
      if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure) return null;
      throw err;
    }
  };
  const stored = (answer: StoredLogAnswer): LogChunk | null =>
    answer.configured && answer.exists ? { ...answer, source: 'store' } : null;

  let first: StoredLogAnswer | null = null;
  if (input.final === true) {
    // Ended: the store has it whole, unless the upload is still going on or was never finished.
    first = await fromStore();
    if (first.configured && first.exists && first.complete) return { ...first, source: 'store' };
  }
  const live = await fromRunner();
  if (live) return live;
  const answer = first ?? (await fromStore());
  const chunk = stored(answer);
  if (chunk) {
    if (input.final !== true || chunk.complete) return chunk;
    // Ended (or lost), its runner gone, and the store holds only what was shipped: all there is.
    return {
      ...chunk,
      complete: chunk.nextOffset - offset < limit,
      partial: `runner "${input.runner}" is gone and had not finished shipping this log; it ends here`,
    };
  }
  throw ApplicationFailure.create({
    // A task still under way: its runner may answer again (a watcher following it waits); an
    // ended one's log is nowhere else to be had.
    type: input.final === true ? 'NotFound' : 'NoAnswer',
    message: answer.configured
      ? `runner "${input.runner}" did not answer in ${RUNNER_ANSWER_MS / 1000}s and the object store has no log of this task`
      : `runner "${input.runner}" did not answer in ${RUNNER_ANSWER_MS / 1000}s; its logs are on that machine (no object store is configured)`,
    nonRetryable: true,
  });
}
