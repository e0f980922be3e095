/**
 * One run: a DAG of tasks. Fans out ready tasks, joins on dependencies, and executes each
 * task at most once on a runner:
 *
 *   reserve (pool queue, any runner with a free slot answers)
 *     -> execute (that runner's own queue; it signals `taskStarted` before spawning anything)
 *
 * A reservation nobody answers times out before anything started and is asked again. An
 * execution that never starts (schedule-to-start timeout) is re-reserved: nothing ran. A
 * started execution whose runner stops heartbeating is `lost`, never retried unless the task
 * is idempotent. Task timeouts are workflow timers (server-side), started when the runner
 * confirms the start; the activity's start-to-close is only a backstop.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  TimeoutFailure,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { PoolActivities, RunnerActivities } from '../activities/types';
import { advance, allFinal, initialRunState, isFinal, runResult, unstartedTasks } from '../src/dag/engine';
import { formatDuration } from '../src/duration';
import { NON_RETRYABLE_TYPES, RunfleetError } from '../src/errors';
import { groupPrefixes, poolTaskQueue } from '../src/ids';
import { RunInputSchema, type RunOptions, type RunSpec, type TaskSpec } from '../src/spec/schema';
import { validateRunOptions, validateRunSpec } from '../src/spec/validate';
import type { Reservation, RunState, TaskState } from '../src/types';
import { approveTaskUpdate, stateQuery, taskStartedSignal } from './messages';

/** The workflow's argument, as `temporal workflow start --input` takes it. */
export interface RunInput {
  spec: unknown;
  options?: unknown;
}

/** After a task's own timeout, how long the server waits for the runner to confirm the kill. */
const KILL_GRACE_MS = 60_000;

export async function runWorkflow(input: RunInput): Promise<RunState> {
  const { spec, options } = parseInput(input);
  const now = () => new Date().toISOString();
  const state = initialRunState(workflowInfo().workflowId, spec, now());
  const specs = new Map(spec.tasks.map((t) => [t.name, t] as const));
  let version = 0;
  const bump = () => void version++;

  setHandler(stateQuery, () => state);
  setHandler(taskStartedSignal, (s) => {
    const t = state.tasks[s.task];
    // Stale confirmations (an earlier attempt) are ignored.
    if (!t || t.status !== 'reserved' || t.attempts !== s.attempt) return;
    t.status = 'running';
    t.runner = s.runner;
    t.startedAt = s.startedAt;
    t.reason = null;
    bump();
  });
  setHandler(
    approveTaskUpdate,
    (req) => {
      const t = state.tasks[req.task];
      t!.approval.approvedBy = req.by;
      t!.approval.approvedAt = now();
      bump();
      return state;
    },
    {
      validator: (req) => {
        const t = state.tasks[req?.task];
        if (!t) throw ApplicationFailure.create({ type: 'NotFound', message: `no task "${req?.task}" in this run`, nonRetryable: true });
        if (!t.approval.required) throw invalidState(`task "${req.task}" does not need approval`);
        if (t.approval.approvedAt) throw invalidState(`task "${req.task}" was approved by ${t.approval.approvedBy} at ${t.approval.approvedAt}`);
        if (t.status !== 'pending') throw invalidState(`task "${req.task}" is ${t.status}`);
        if (typeof req.by !== 'string' || req.by.length === 0) throw invalidState('an approval names who approves');
      },
    },
  );

  upsertMemo({ name: spec.name });
  upsertSearchAttributes({
    RunfleetGroup: [spec.group],
    RunfleetGroupPath: groupPrefixes(spec.group),
    RunfleetRunName: [spec.name],
    RunfleetPhase: ['queued'],
    RunfleetResult: ['unknown'],
  });

  const setPhase = (phase: RunState['phase']) => {
    state.phase = phase;
    upsertSearchAttributes({ RunfleetPhase: [phase], RunfleetResult: [state.result] });
  };

  const running: Promise<void>[] = [];
  const dispatched = new Set<string>();
  let stopping = false;
  try {
    state.startedAt = now();
    setPhase('running');
    for (;;) {
      for (const name of advance(spec, state, now())) {
        // A dispatched task stays `pending` until a runner reserves it: remember it here.
        if (dispatched.has(name)) continue;
        dispatched.add(name);
        running.push(runTask(specs.get(name) as TaskSpec, state.tasks[name] as TaskState));
      }
      if (allFinal(state)) break;
      const seen = version;
      await condition(() => version !== seen);
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    stopping = true;
    // Let every task settle (their activities are being cancelled and the runners confirm
    // the kill), then record the run as stopped.
    await CancellationScope.nonCancellable(async () => {
      await Promise.allSettled(running);
      for (const name of unstartedTasks(state)) {
        const t = state.tasks[name] as TaskState;
        t.status = 'cancelled';
        t.finishedAt = now();
        t.reason = 'the run was cancelled';
      }
      state.reason = 'cancelled by request';
      state.result = 'stopped';
      state.finishedAt = now();
      const anyStarted = Object.values(state.tasks).some((t) => t.startedAt !== null);
      setPhase(anyStarted ? 'finished' : 'cancelled');
    });
    throw err;
  }

  state.result = runResult(spec, state, stopping);
  state.finishedAt = now();
  setPhase('finished');
  return state;

  // --- helpers, closed over the run's state -------------------------------------------------

  async function runTask(task: TaskSpec, t: TaskState): Promise<void> {
    try {
      await executeAtMostOnce(task, t);
    } catch (err) {
      if (isCancellation(err)) {
        if (!isFinal(t.status)) {
          t.status = 'cancelled';
          t.reason = t.startedAt ? 'the run was cancelled; the runner stopped the task' : 'the run was cancelled';
          t.finishedAt = now();
        }
      } else {
        t.status = 'failed';
        t.reason = `internal error: ${describeError(err)}`;
        t.finishedAt = now();
      }
    } finally {
      bump();
    }
  }

  async function executeAtMostOnce(task: TaskSpec, t: TaskState): Promise<void> {
    for (;;) {
      const reservation = await reserve(task, t);
      if (!reservation) return;
      const verdict = await execute(task, t, reservation);
      if (verdict === 'done') return;
      // 'not-started': the runner never took the task; reserve again, nothing ran.
      // 'retry': an idempotent task was lost; start it again.
    }
  }

  async function reserve(task: TaskSpec, t: TaskState): Promise<Reservation | null> {
    const pool = proxyActivities<PoolActivities>({
      taskQueue: poolTaskQueue(task.pool),
      // Nobody answered in time: ask again (nothing has started, so this is always safe).
      scheduleToStartTimeout: options.reservationTimeout,
      // Reserving is bookkeeping on the runner: seconds at most.
      startToCloseTimeout: 10_000,
      retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
    });
    for (;;) {
      try {
        const r = await pool.reserveSlot({ runId: state.id, task: task.name, driver: task.driver, attempt: t.attempts + 1 });
        t.status = 'reserved';
        t.runner = r.runner;
        t.attempts += 1;
        t.reason = null;
        bump();
        return r;
      } catch (err) {
        if (isCancellation(err)) throw err;
        if (timeoutType(err) === 'SCHEDULE_TO_START') {
          t.reason = `waiting for a runner of pool "${task.pool}" (none answered in ${formatDuration(options.reservationTimeout)}; asking again)`;
          bump();
          continue;
        }
        finish(t, 'failed', `could not reserve a runner: ${describeError(err)}`);
        return null;
      }
    }
  }

  async function execute(task: TaskSpec, t: TaskState, r: Reservation): Promise<'done' | 'not-started' | 'retry'> {
    const timeoutMs = task.timeout ?? 3_600_000;
    const runner = proxyActivities<RunnerActivities>({
      taskQueue: r.taskQueue,
      // The reservation holds the slot this long; past it the runner has given it back.
      scheduleToStartTimeout: options.evictionTimeout,
      // Backstop only: the workflow's own timer enforces the task timeout.
      startToCloseTimeout: timeoutMs + KILL_GRACE_MS,
      heartbeatTimeout: options.heartbeatTimeout,
      // At most once: the scheduler never starts a task twice by itself.
      retry: { maximumAttempts: 1 },
      cancellationType: 'WAIT_CANCELLATION_COMPLETED',
    });
    const attempt = t.attempts;
    const execScope = new CancellationScope();
    let timedOut = false;
    const timerScope = new CancellationScope();
    const timer = timerScope.run(async () => {
      await condition(() => t.status === 'running' && t.attempts === attempt);
      await sleep(timeoutMs);
      timedOut = true;
      execScope.cancel();
    });
    timer.catch(() => undefined);
    try {
      const outcome = await execScope.run(() =>
        runner.executeTask({ runId: state.id, reservationId: r.reservationId, attempt, task, runEnv: spec.env ?? {} }),
      );
      t.startedAt = outcome.startedAt;
      t.exitCode = outcome.exitCode;
      t.runner = r.runner;
      if (outcome.exitCode === 0) finish(t, 'success', null, outcome.finishedAt);
      else
        finish(
          t,
          'failed',
          `step ${(outcome.failedStep ?? 0) + 1} exited with code ${outcome.exitCode}`,
          outcome.finishedAt,
        );
      return 'done';
    } catch (err) {
      if (timedOut) {
        finish(t, 'failed', `timed out after ${formatDuration(timeoutMs)}; the runner killed the process group`);
        return 'done';
      }
      if (isCancellation(err)) throw err;
      const type = timeoutType(err);
      if (type === 'SCHEDULE_TO_START') {
        t.status = 'pending';
        t.runner = null;
        t.attempts -= 1; // it never started
        t.reason = `runner "${r.runner}" did not take the task within ${formatDuration(options.evictionTimeout)}; reserving again`;
        bump();
        return 'not-started';
      }
      if (type === 'HEARTBEAT') {
        const why = `runner "${r.runner}" stopped heartbeating (silent for ${formatDuration(options.heartbeatTimeout)})`;
        if (task.idempotent && t.attempts < options.maxAttempts) {
          t.status = 'pending';
          t.reason = `${why}; the task is idempotent, starting it again (attempt ${t.attempts + 1} of ${options.maxAttempts})`;
          bump();
          return 'retry';
        }
        finish(t, 'lost', `${why}; not retried: the task may have run`);
        return 'done';
      }
      if (type === 'START_TO_CLOSE') {
        finish(t, 'lost', `runner "${r.runner}" did not confirm the end of the task ${formatDuration(KILL_GRACE_MS)} after its timeout`);
        return 'done';
      }
      if (!t.startedAt && isApplicationFailure(err, 'NoFreeSlot')) {
        t.status = 'pending';
        t.attempts -= 1;
        bump();
        return 'not-started';
      }
      finish(t, 'failed', describeError(err));
      return 'done';
    } finally {
      timerScope.cancel();
    }
  }

  function finish(t: TaskState, status: TaskState['status'], reason: string | null, at?: string): void {
    t.status = status;
    t.reason = reason;
    t.finishedAt = at ?? now();
    bump();
  }
}

function parseInput(input: unknown): { spec: RunSpec; options: RunOptions } {
  try {
    const parsed = RunInputSchema.safeParse(input);
    if (!parsed.success) {
      throw new RunfleetError(
        'InvalidWorkflowInput',
        'runWorkflow takes one argument {"spec": <run spec>, "options"?: {...}}; got ' + describeValue(input),
      );
    }
    return { spec: validateRunSpec(parsed.data.spec), options: validateRunOptions(parsed.data.options) };
  } catch (err) {
    // Bad input fails the workflow at once; a workflow task retrying forever helps nobody.
    if (err instanceof RunfleetError) throw ApplicationFailure.create({ type: err.code, message: err.message, nonRetryable: true, details: [err.details ?? null] });
    throw ApplicationFailure.create({ type: 'InvalidWorkflowInput', message: describeError(err), nonRetryable: true });
  }
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 120 ? text.slice(0, 117) + '...' : text;
}

function invalidState(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'InvalidState', message, nonRetryable: true });
}

function timeoutType(err: unknown): string | null {
  // 'SCHEDULE_TO_START' | 'START_TO_CLOSE' | 'HEARTBEAT' | 'SCHEDULE_TO_CLOSE'
  if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure) return err.cause.timeoutType ?? null;
  return null;
}

function isApplicationFailure(err: unknown, type: string): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === type;
}

function describeError(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  if (err instanceof CancelledFailure) return 'cancelled';
  return err instanceof Error ? err.message : String(err);
}
