/**
 * The activity interfaces workflows call through `proxyActivities`. Implementations live in
 * the factories beside this file; only `workers/*` build them with real dependencies.
 */
import type { TaskSpec } from '../src/spec/schema';
import type { DriverName, Reservation, TaskOutcome } from '../src/types';

export interface ReserveRequest {
  runId: string;
  driver: DriverName;
  /** Leases wanted: the run's ready tasks for this pool and driver. The runner grants 1..want. */
  want: number;
}

export interface ExecuteRequest {
  runId: string;
  leaseId: string;
  attempt: number;
  task: TaskSpec;
  /** The run-level env; the task's own env overrides it. */
  runEnv: Record<string, string>;
}

export interface ReadLogRequest {
  runId: string;
  task: string;
  offset: number;
  /** Bytes at most in one answer. */
  limit: number;
}

export interface LogChunk {
  data: string;
  nextOffset: number;
  /** False when the runner has no log for the task (yet). */
  exists: boolean;
  /** True when the task is not running on this runner any more: no more bytes will come. */
  complete: boolean;
}

/** Served on a pool's queues (`pool/<name>[/<driver>]`) by every runner of the pool with a free slot. */
export interface PoolActivities {
  reserveSlots(req: ReserveRequest): Promise<Reservation>;
}

/** Served on a runner's own queue (`runner/<name>`). */
export interface RunnerActivities {
  executeTask(req: ExecuteRequest): Promise<TaskOutcome>;
  readTaskLog(req: ReadLogRequest): Promise<LogChunk>;
}
