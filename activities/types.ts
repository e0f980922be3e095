/**
 * The activity interfaces workflows call through `proxyActivities`. Implementations live in
 * the factories beside this file; only `workers/*` build them with real dependencies.
 */
import type { TaskSpec } from '../src/spec/schema';
import type { DriverName, Reservation, TaskOutcome } from '../src/types';
import type { PingReply, RunnerLiveStatus, RunnerSettings, SealedKey } from '../workflows/runner-messages';

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
/** Which execution a run asks its runner about. */
export interface LookupTaskRequest {
  runId: string;
  task: string;
  attempt: number;
}

/**
 * What a runner knows of an execution its run lost track of. `known: false`: never received,
 * and refused from now on (safe to start elsewhere). `outcome`: how it ended here; null while it
 * runs or is being reported.
 */
export type TaskLookup = { known: false } | { known: true; outcome: TaskOutcome | null };

export interface RunnerActivities {
  executeTask(req: ExecuteRequest): Promise<TaskOutcome>;
  lookupTask(req: LookupTaskRequest): Promise<TaskLookup>;
  readTaskLog(req: ReadLogRequest): Promise<LogChunk>;
}

/**
 * The session the registry workflow keeps on a runner's own queue: a long activity that the
 * runner heartbeats with its status (a heartbeat timeout is how the fleet learns it is gone).
 * The registry cancels it and starts the next generation to change what the runner must do.
 */
export interface SessionRequest {
  generation: number;
  enabled: boolean;
  settings: RunnerSettings;
  /** Set on purge: the runner wipes its state directory and exits 0. */
  delete?: { by: string; reason: string };
}

export interface SessionEnd {
  /** `renew`: the runner ends a session before its start-to-close so a new one starts. */
  reason: 'renew' | 'deleted';
  status: RunnerLiveStatus;
}

/** Served on a runner's own queue, next to `RunnerActivities`. */
export interface RunnerControlActivities {
  runnerSession(req: SessionRequest): Promise<SessionEnd>;
  pingRunner(): Promise<RunnerLiveStatus>;
}

/** Served by the control worker, which holds the data keys. */
export interface RegistryActivities {
  /** Seals every data key for a runner's public key (base64 SPKI DER, X25519). */
  sealDataKeys(req: { publicKey: string }): Promise<SealedKey[]>;
}

export type { PingReply };
