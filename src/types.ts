/**
 * Glossary
 *
 * - Run: a named DAG of tasks submitted as one unit, in a group path such as `/project/42/main`.
 *   One Temporal workflow (`runWorkflow`) per run; its id is `run/<group>/<id>`.
 * - Task: a node of the DAG: shell steps executed by one driver on one runner.
 * - Depends: a task's parents, each with the conditions under which the task may run:
 *   `on_success`, `on_failure`, `on_skipped` (default: `on_success`).
 * - Pool: a named set of runners sharing a reservation task queue (`pool/<name>`).
 * - Runner: a process that serves one pool queue (reservations) and its own queue
 *   (`runner/<name>`: task execution, log reads). It is the source of truth for what it ran.
 * - Slot: one unit of a runner's concurrency. A reservation holds a slot until the task starts
 *   or until the eviction time passes.
 * - Phase: where a run is in its life (`queued`, `running`, `finished`, `cancelled`).
 * - Result: how a run ended (`unknown` until it has, then `success`, `failed` or `stopped`).
 * - Lost: a started task whose runner stopped heartbeating. Never retried unless idempotent:
 *   at most once matters more than finishing (a deploy must not run twice). Not final: its
 *   dependents and the run wait until the runner reports the outcome, or is purged (the task
 *   fails), or the run is stopped (cancelled).
 *
 * Everything here is plain JSON (no Map, Set, Date or classes) so it crosses workflow
 * boundaries, queries and continue-as-new unchanged. This file is sandbox-safe.
 */

export const RUN_PHASES = ['queued', 'running', 'finished', 'cancelled'] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

export const RUN_RESULTS = ['unknown', 'success', 'failed', 'stopped'] as const;
export type RunResult = (typeof RUN_RESULTS)[number];

export const TASK_STATUSES = [
  'pending',
  'reserved',
  'running',
  'success',
  'failed',
  'skipped',
  'cancelled',
  'lost',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/**
 * A lost task is not final: its runner is the source of truth and may still report how it ended
 * (`taskReport`), or be purged (`runnerPurged`), which fails it.
 */
export const FINAL_TASK_STATUSES: readonly TaskStatus[] = ['success', 'failed', 'skipped', 'cancelled'];

export const DEPEND_CONDITIONS = ['on_success', 'on_failure', 'on_skipped'] as const;
export type DependCondition = (typeof DEPEND_CONDITIONS)[number];

export const DRIVERS = ['process', 'docker', 'kubernetes'] as const;
export type DriverName = (typeof DRIVERS)[number];

/** When a container driver pulls a task's image: only when the engine lacks it (default), every time, or never. */
export const PULL_POLICIES = ['if-not-present', 'always', 'never'] as const;
export type PullPolicy = (typeof PULL_POLICIES)[number];

/** The state of one task, as the run workflow's query and `run show --json` return it. */
export interface TaskState {
  status: TaskStatus;
  runner: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  reason: string | null;
  /** Execution attempts started on a runner (more than 1 only for idempotent tasks). */
  attempts: number;
  /**
   * Set when the task's runner went silent and the task became `lost`; kept once the runner
   * reports or is purged, as a record. Absent on tasks never lost.
   */
  lostAt?: string;
  /** Set while a `needs_approval` task waits, and once approved. */
  approval: { required: boolean; approvedBy: string | null; approvedAt: string | null };
  /** Earlier attempts that ended without settling the task (retried), oldest first; absent until one. */
  history?: AttemptRecord[];
  /** While a retried task waits for its next attempt: when it is dispatched again. */
  retryAt?: string;
  /**
   * Sent to its runner queued behind this task of the run, on the same slot: it starts when that
   * one ends (clients do not show it running meanwhile).
   */
  queuedBehind?: string;
  /** Set when the task was cancelled on its own (`run cancel-task`): who and why. */
  cancelledBy?: string;
  /** Its outputs (`$RUNFLEET_OUTPUT`), once its attempt ended with some; dependents get them. */
  outputs?: Record<string, string>;
  /** Why outputs it wrote were not kept (the run's budget for outputs was spent). */
  outputsDropped?: string;
}

/** One ended attempt of a task that went on (a retry). */
export interface AttemptRecord {
  attempt: number;
  runner: string | null;
  /** How it ended: `failed` (exit code) or `timeout`. */
  outcome: 'failed' | 'timeout';
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string;
  reason: string;
  /** True: the task was started again after it. */
  retried: boolean;
}

/** The whole state of a run (the `state` query, `run show --json`). */
export interface RunState {
  id: string;
  name: string;
  group: string;
  phase: RunPhase;
  result: RunResult;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Why the run stopped, when it was cancelled. */
  reason: string | null;
  /** The run this one restarts (its succeeded tasks were kept, not run again). */
  restartOf: string | null;
  tasks: Record<string, TaskState>;
  /**
   * Messages in a runner's name that its signing key did not verify (the latest 50): refused,
   * not applied. Absent until the first one.
   */
  refusals?: { at: string; runner: string; task: string | null; message: string }[];
}

/** What the runner's execute activity reports back. */
export interface TaskOutcome {
  exitCode: number;
  startedAt: string;
  finishedAt: string;
  /** Index of the step that failed, when exitCode is not 0. */
  failedStep: number | null;
  /** What the task wrote to `$RUNFLEET_OUTPUT` (`src/run/outputs.ts`); absent when nothing. */
  outputs?: Record<string, string>;
}

/** What a runner answers to a reservation on its pool queue: one or more slot leases. */
export interface Reservation {
  runner: string;
  /** The runner's own queue, where tasks on these leases go. */
  taskQueue: string;
  leases: string[];
  /** The runner's signature over this answer (`src/security/runner-proof.ts`). */
  proof?: string;
}
