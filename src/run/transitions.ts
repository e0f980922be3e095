/**
 * Every change of a task's status in a run, as pure functions over plain-JSON `TaskState`. The
 * run workflow (workflows/run.ts and workflows/run/) calls these and nothing else writes a
 * task's status; unit tests drive them directly. Sandbox-safe.
 *
 *   pending  -> reserved (dispatched on a lease), skipped (DAG), cancelled (stop, cancel),
 *               failed (no fleet instance held it)
 *   reserved -> success | failed (an outcome; a timeout), cancelled, lost (runner silent),
 *               pending (never started, an idempotent retry, a retry of a failure)
 *   lost     -> success | failed (reported; runner purged), cancelled, pending (never received)
 *
 * `running` is never stored: clients show a reserved task whose execution started as running
 * (src/client/live-status.ts). Final statuses never change. A move the table does not allow is a
 * bug in the workflow: it throws, failing the workflow task (retried once a fix is deployed)
 * rather than recording a state that cannot be.
 */
import { formatDuration } from '../duration';
import type { TaskRetry, TaskSpec } from '../spec/schema';
import type { AttemptRecord, RunState, TaskOutcome, TaskState, TaskStatus } from '../types';

export const TASK_TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  pending: ['reserved', 'skipped', 'cancelled', 'failed'],
  reserved: ['success', 'failed', 'cancelled', 'lost', 'pending'],
  running: ['success', 'failed', 'cancelled', 'lost', 'pending'],
  lost: ['success', 'failed', 'cancelled', 'pending'],
  success: [],
  failed: [],
  skipped: [],
  cancelled: [],
};

export type FinalStatus = 'success' | 'failed' | 'skipped' | 'cancelled';

/** Earlier attempts kept on a task: a task retries at most 10 times, idempotent restarts 10. */
export const MAX_ATTEMPT_RECORDS = 25;

export function canMove(from: TaskStatus, to: TaskStatus): boolean {
  return TASK_TRANSITIONS[from].includes(to);
}

function move(t: TaskState, to: TaskStatus): void {
  if (!canMove(t.status, to)) throw new Error(`a task cannot go from ${t.status} to ${to}`);
  t.status = to;
}

/**
 * For display only (`run show`, `run watch`): a reserved task whose execution the server has
 * seen start is shown running, with the server's start time. Never stored by the workflow.
 */
export function showRunning(t: TaskState, startedAt: string | null): void {
  if (t.status !== 'reserved') return;
  t.status = 'running';
  if (startedAt !== null) t.startedAt = startedAt;
}

/** Dispatched on a runner's lease: a new attempt. Returns its number. */
export function reserveTask(t: TaskState, runner: string): number {
  move(t, 'reserved');
  t.runner = runner;
  t.attempts += 1;
  t.reason = null;
  return t.attempts;
}

/** Final. `at` defaults to `now` (an outcome carries the runner's own end time). */
export function finishTask(t: TaskState, status: FinalStatus, reason: string | null, now: string, at?: string): void {
  move(t, status);
  t.reason = reason;
  t.finishedAt = at ?? now;
}

/** Its runner went silent: not final, not retried (it may have run). */
export function loseTask(t: TaskState, reason: string, now: string): void {
  move(t, 'lost');
  t.lostAt = now;
  t.reason = reason;
}

/**
 * Back to pending before it ended: never started (the attempt does not count) or started again
 * because it is idempotent (it does).
 */
export function requeueTask(t: TaskState, reason: string, neverStarted: boolean): void {
  move(t, 'pending');
  t.runner = null;
  if (neverStarted) t.attempts -= 1;
  t.reason = reason;
}

/** A lost attempt its runner never received: dispatched again as a new attempt. */
export function giveBackTask(t: TaskState, runner: string, attempt: number): void {
  move(t, 'pending');
  t.runner = null;
  delete t.lostAt;
  t.reason = `runner "${runner}" never received attempt ${attempt} (the server handed it out, the runner has no record of it): dispatching it again`;
}

/** How an outcome reads: its status and reason (`heard`: how a report reached the run). */
export function outcomeVerdict(
  outcome: TaskOutcome,
  heard: string | null,
): { status: 'success' | 'failed'; reason: string | null } {
  if (outcome.exitCode === 0) return { status: 'success', reason: heard };
  // A runner that found the task's processes gone knows no step (failedStep null).
  const failure =
    outcome.failedStep === null && heard !== null
      ? `exited with code ${outcome.exitCode}`
      : `step ${(outcome.failedStep ?? 0) + 1} exited with code ${outcome.exitCode}`;
  return { status: 'failed', reason: heard ? `${failure}; ${heard}` : failure };
}

/** A completion, from the execution activity or from a runner's report. */
export function applyOutcome(t: TaskState, outcome: TaskOutcome, heard: string | null, now: string): void {
  t.startedAt = outcome.startedAt;
  t.exitCode = outcome.exitCode;
  const v = outcomeVerdict(outcome, heard);
  finishTask(t, v.status, v.reason, now, outcome.finishedAt);
}

/** What ended an attempt that a task's `retry` may answer. */
export type RetryCause = 'failed' | 'timeout';

/**
 * The wait before the next attempt when `retry` allows one, else null: retries are counted by
 * the attempts already recorded as retried, and the wait doubles from `backoffMs` up to its cap.
 */
export function retryDelay(retry: TaskRetry | undefined, t: TaskState, cause: RetryCause): number | null {
  if (!retry || !retry.on.includes(cause)) return null;
  const retried = (t.history ?? []).filter((a) => a.retried).length;
  if (retried >= retry.limit) return null;
  return Math.min(retry.backoffMs * 2 ** retried, retry.maxBackoffMs);
}

/**
 * An attempt that failed or timed out and will be retried: kept in the task's history, and the
 * task goes back to pending (its dependents wait; the run dispatches it again after `delayMs`).
 */
export function retryTask(
  t: TaskState,
  attempt: Omit<AttemptRecord, 'attempt' | 'runner' | 'retried'>,
  delayMs: number,
  now: string,
  limit: number,
): void {
  const record: AttemptRecord = { attempt: t.attempts, runner: t.runner, ...attempt, retried: true };
  pushAttempt(t, record);
  const retries = (t.history ?? []).filter((a) => a.retried).length;
  move(t, 'pending');
  t.runner = null;
  t.exitCode = null;
  t.finishedAt = null;
  t.retryAt = new Date(Date.parse(now) + delayMs).toISOString();
  t.reason = `attempt ${record.attempt} ${record.reason}; retrying in ${formatDuration(delayMs)} (retry ${retries} of ${limit})`;
}

/** Keeps the record of an ended attempt, bounded. */
export function pushAttempt(t: TaskState, record: AttemptRecord): void {
  const history = (t.history ??= []);
  history.push(record);
  if (history.length > MAX_ATTEMPT_RECORDS) history.splice(0, history.length - MAX_ATTEMPT_RECORDS);
}

/** Why a task cannot be approved now, or null. */
export function approvalProblem(t: TaskState | undefined, task: string): string | null {
  if (!t) return `no task "${task}" in this run`;
  if (!t.approval.required) return `task "${task}" does not need approval`;
  if (t.approval.approvedAt)
    return `task "${task}" was approved by ${t.approval.approvedBy} at ${t.approval.approvedAt}`;
  if (t.status !== 'pending') return `task "${task}" is ${t.status}`;
  return null;
}

/** Why a task cannot be cancelled now, or null. */
export function cancelProblem(t: TaskState | undefined, task: string): string | null {
  if (!t) return `no task "${task}" in this run`;
  if (!canMove(t.status, 'cancelled')) return `task "${task}" is ${t.status} already`;
  return null;
}

/** A runner's report of how a task ended, as the run workflow reads it. */
export interface ReportLike {
  task?: unknown;
  attempt?: unknown;
  runner?: unknown;
  outcome?: unknown;
}

/** Why a runner's report is ignored, or null when it applies. */
export function reportProblem(state: RunState, r: ReportLike | undefined): string | null {
  if (!r || typeof r.task !== 'string') return 'no task named';
  const t = state.tasks[r.task];
  if (!t) return `no task "${r.task}" in this run`;
  const o = r.outcome as Partial<TaskOutcome> | undefined;
  if (!o || typeof o.exitCode !== 'number' || typeof o.startedAt !== 'string' || typeof o.finishedAt !== 'string')
    return `task "${r.task}": the report has no outcome {exitCode, startedAt, finishedAt}`;
  if (r.attempt !== t.attempts)
    return `task "${r.task}": attempt ${String(r.attempt)} is not the current one (${t.attempts})`;
  if (r.runner !== t.runner)
    return `task "${r.task}": runner "${String(r.runner)}" does not run it (${t.runner ?? 'none'})`;
  if (t.status !== 'lost' && t.status !== 'reserved' && t.status !== 'running')
    return `task "${r.task}" is ${t.status} already`;
  return null;
}

/** The labels a task needs, as text: `gpu=true, os=linux`. */
export function labelText(labels: TaskSpec['runs_on']): string {
  return Object.entries(labels ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}
