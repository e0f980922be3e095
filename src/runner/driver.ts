/**
 * What a runner's drivers have in common. A driver runs one task's steps somewhere (a process
 * group, a container) so that the task outlives the runner process: a runner killed mid-task
 * and started again finds the task through its session record and learns its true outcome
 * (`recover`), without running anything twice.
 */
import type { DriverName, PullPolicy } from '../types';

/** Who a task execution belongs to: container labels, session records, log lines. */
export interface TaskLabels {
  /** The run's workflow id. */
  run: string;
  task: string;
  attempt: number;
  runner: string;
  pool: string;
}

export interface DriverRun {
  steps: { name?: string; run: string }[];
  /** Where the steps start: `workspace` or a directory inside it. */
  cwd: string;
  /** The task's workspace, all a container sees of the runner's disk. Default: `cwd`. */
  workspace?: string;
  env: Record<string, string>;
  /** Steps' stdout and stderr are appended here (the driver writes step markers too). */
  logFile: string;
  /** Where the driver keeps what it needs to find the task again (pid, exit file, container). */
  sessionDir: string;
  labels: TaskLabels;
  /** Container image, for drivers that run one. */
  image?: string;
  /** When to pull `image`. Default `if-not-present`. */
  pull?: PullPolicy;
  /** The container's limits the task asked for (bytes, processes, millicores); the driver's defaults fill the rest. */
  resources?: { memory?: number; pids?: number; cpu?: number };
  /** Node labels the task's pod needs (kubernetes), added to the runner's own. */
  nodeSelector?: Record<string, string>;
  /** The service account the task's pod runs as (kubernetes); one the runner allows. */
  serviceAccount?: string;
  /** When the task's timeout ends (epoch ms): a driver whose tasks outlive the runner may enforce it too. */
  deadline?: number;
  /** The task asks for root in its container; a driver that does not allow it refuses the task. */
  runAsRoot?: boolean;
  signal: AbortSignal;
  /**
   * Called once the workspace is the task's and before its first step, with the user the task
   * runs as: restores what the task gets from the object store (artifacts, a cache) with the
   * task's own rights. A throw fails the task before it starts.
   */
  prepare?: (user: TaskUser) => Promise<void>;
  /**
   * Called once the task's steps have ended and before the workspace is taken back and its user
   * freed, with that user and the result: archives what the task keeps (artifacts, a cache) with
   * the task's own rights. Not called for a task re-attached after a restart.
   */
  collect?: (user: TaskUser, result: DriverResult) => Promise<void>;
  /**
   * Called once the task has started, with what `recover` will need; persisted before work begins
   * (unless the driver `findsTasksWithoutHandle`).
   */
  onStarted?: (handle: DriverHandle) => void;
}

export interface DriverResult {
  exitCode: number;
  failedStep: number | null;
  /** True when the run was stopped through `signal`. */
  aborted: boolean;
}

/** What identifies a started task to its driver after a runner restart. Plain JSON. */
export interface DriverHandle {
  driver: DriverName;
  /** process: the supervisor's pid (its process group). */
  pid?: number;
  /** docker: the container id. */
  containerId?: string;
}

/** The recorded state of a task execution started by this runner (see `sessions.ts`). */
export interface SessionRecord {
  labels: TaskLabels;
  driver: DriverName;
  handle: DriverHandle | null;
  sessionDir: string;
  logFile: string;
  startedAt: string;
  /**
   * When the task's timeout ends (ISO time: its start plus its timeout). Enforced by the server
   * while an execution activity holds the task; by the runner once none does (a restart, a
   * detach): see `unattended.ts`. Absent in records written before it was recorded.
   */
  deadline?: string;
  /** The runner process that started it. */
  bootId: string;
}

/** What a driver finds of a task started by an earlier runner process. */
export type Recovered =
  { state: 'finished'; result: DriverResult; finishedAt: string } | { state: 'vanished'; reason: string };

/** A recovered task's outcome. */
export function finished(exitCode: number, failedStep: number | null, aborted: boolean, finishedAt: string): Recovered {
  return { state: 'finished', result: { exitCode, failedStep, aborted }, finishedAt };
}

/** Who the task runs as, for what is done in its name before its first step. Absent: the runner's own user. */
export type TaskUser = { uid: number; gid: number } | undefined;

export interface Driver {
  readonly name: DriverName;
  /**
   * True when `recover` finds a task again without the handle `onStarted` gave (the process
   * driver finds its supervisor by command line): the runner then does not write it down, one
   * file write less per task.
   */
  readonly findsTasksWithoutHandle?: boolean;
  run(req: DriverRun): Promise<DriverResult>;
  /**
   * A task started by an earlier process of this runner: wait for it if it still runs
   * (re-attached: logs keep going to its log file), then give its outcome; `signal` stops it.
   */
  recover(session: SessionRecord, signal: AbortSignal): Promise<Recovered>;
  /**
   * Removes what tasks of this runner (or of the `runners` given) left behind and no session
   * claims: stopped or orphaned containers, dead supervisors' files. Returns how many it removed.
   */
  sweep(opts: { runners: string[]; keep: (labels: TaskLabels) => boolean }): Promise<number>;
}
