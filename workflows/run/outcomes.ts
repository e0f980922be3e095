/**
 * How a task's attempt settles: an outcome (from its execution or a runner's report) or a
 * timeout finishes the task, unless its `retry` allows another attempt. Then the attempt is kept
 * in the task's history and the task waits (a workflow timer, in the task's own scope: a stop or
 * a cancel of the task ends the wait) before it is dispatched again. A lost task is never retried
 * here: only its runner's report says how it ended (and a failure it reports may be retried).
 */
import { isCancellation, sleep } from '@temporalio/workflow';
import { formatDuration } from '../../src/duration';
import { OUTPUT_LIMITS, outputsBytes, outputsProblem } from '../../src/run/outputs';
import { applyOutcome, outcomeVerdict, retryDelay, retryTask } from '../../src/run/transitions';
import type { TaskOutcome, TaskState } from '../../src/types';
import type { RunContext } from './context';

/** An outcome: success, a failure, or a failure retried. */
export function settleOutcome(ctx: RunContext, name: string, outcome: TaskOutcome, heard: string | null): void {
  const t = ctx.taskState(name);
  const retry = ctx.task(name).retry;
  const delay = outcome.exitCode === 0 ? null : retryDelay(retry, t, 'failed');
  if (delay === null || !retry) {
    ctx.taskChanged(name);
    keepOutputs(ctx, t, outcome.outputs);
    applyOutcome(t, outcome, heard, ctx.now());
    return;
  }
  t.startedAt = outcome.startedAt;
  const reason = outcomeVerdict(outcome, heard).reason ?? `exited with code ${outcome.exitCode}`;
  retryTask(
    t,
    {
      outcome: 'failed',
      exitCode: outcome.exitCode,
      startedAt: outcome.startedAt,
      finishedAt: outcome.finishedAt,
      reason,
    },
    delay,
    ctx.now(),
    retry.limit,
  );
  waitThenDispatch(ctx, name, delay);
}

/**
 * The outputs of a task's last attempt, checked again (the runner's word is bounded like the
 * task's) and kept within the run's budget: its state travels whole when it continues as new.
 */
function keepOutputs(ctx: RunContext, t: TaskState, outputs: Record<string, string> | undefined): void {
  if (outputs === undefined) return;
  const problem = outputsProblem(outputs);
  if (problem) {
    t.outputsDropped = `its outputs were refused: ${problem}`;
    return;
  }
  let used = 0;
  for (const other of Object.values(ctx.state.tasks)) {
    if (other !== t && other.outputs) used += outputsBytes(other.outputs);
  }
  if (used + outputsBytes(outputs) > OUTPUT_LIMITS.maxRunBytes) {
    t.outputsDropped = `not kept: the run's tasks hold ${OUTPUT_LIMITS.maxRunBytes / 1024} KiB of outputs at most`;
    return;
  }
  t.outputs = outputs;
}

/** The task's own timeout passed (the server timed its execution out): failed, or retried. */
export function settleTimeout(ctx: RunContext, name: string, timeoutMs: number): void {
  const t = ctx.taskState(name);
  const retry = ctx.task(name).retry;
  const reason = `timed out after ${formatDuration(timeoutMs)}; the runner kills the process group`;
  const delay = retryDelay(retry, t, 'timeout');
  if (delay === null || !retry) {
    ctx.finish(t, 'failed', reason);
    return;
  }
  retryTask(
    t,
    { outcome: 'timeout', exitCode: null, startedAt: t.startedAt, finishedAt: ctx.now(), reason },
    delay,
    ctx.now(),
    retry.limit,
  );
  waitThenDispatch(ctx, name, delay);
}

/** The wait before the next attempt counts as work in flight: the run does not continue as new during it. */
function waitThenDispatch(ctx: RunContext, name: string, delayMs: number): void {
  const t = ctx.taskState(name);
  ctx.tasksInFlight++;
  ctx.track(
    async () => {
      try {
        await sleep(delayMs);
      } catch (err) {
        if (!isCancellation(err)) throw err;
        ctx.finish(t, 'cancelled', ctx.cancelledReason(name) ?? 'the run was stopped while the task waited to retry');
        return;
      }
      delete t.retryAt;
      ctx.redispatch(name);
    },
    { task: name, settled: () => ctx.tasksInFlight-- },
  );
}
