/**
 * The activity interfaces workflows call through `proxyActivities`. Implementations live in
 * the factories beside this file; only `workers/*` build them with real dependencies. Also the
 * calls some of them make through the client library (`FleetCalls`, `RunnerRegistryCalls`):
 * declared here, so activities never import it; the worker passes the client library's classes,
 * which have them.
 */
import type { TaskSpec } from '../src/spec/schema';
import type { DriverName, Reservation, TaskOutcome } from '../src/types';
import type { ExecutionSaid, ReservationSaid } from '../src/security/runner-proof';
import type { ApprovalStatement, OperatorCommand } from '../src/security/statements';
import type { HoldRequest, ProvisionRequest, ProvisionResult } from '../src/fleet/types';
import type {
  AdmitRunnerRequest,
  Admission,
  PingReply,
  RunnerLiveStatus,
  SealedKey,
  SessionRequest,
} from '../src/registry/types';

export interface ReserveRequest {
  runId: string;
  driver: DriverName;
  /** Leases wanted: the run's ready tasks for this pool and driver. The runner grants 1..want. */
  want: number;
  /** The run's id for this reservation, signed into the answer (runs before runner proofs send none). */
  nonce?: string;
}

export interface ExecuteRequest {
  runId: string;
  leaseId: string;
  attempt: number;
  task: TaskSpec;
  /**
   * The run-level env (the task's own env overrides it), when it is small; a large one is read
   * once per run from the run (`runEnvQuery`) instead: `runEnvRef` says how large it is.
   */
  runEnv?: Record<string, string>;
  runEnvRef?: { bytes: number };
  /** The run's `secret_env`: with the task's own, the env variables whose values its log masks. */
  runSecretEnv?: string[];
  /** The outputs of the tasks this one depends on, by task (`RUNFLEET_NEEDS_<TASK>_<KEY>`). */
  needs?: Record<string, Record<string, string>>;
  /**
   * The run has no task waiting that could use this lease after this one: the runner gives the
   * slot back when the task ends instead of keeping it for the linger. Absent: keep it.
   */
  releaseLease?: boolean;
  /**
   * Sent while the lease's task (`behind`) still runs: the runner starts this one the moment
   * that one ends (`SlotPool.waitForLease`), and gives up (`LeaseExpired`, nothing started) if it
   * has not ended within the time the execution's start-to-close timeout leaves beyond `timeoutMs`.
   */
  queued?: boolean;
  /** The execution this one is queued behind: `<task>/<attempt>` of the same run. */
  behind?: string;
  /** The task's own timeout, counted from when it starts here (the start-to-close also covers a queued wait). */
  timeoutMs?: number;
}

export interface ReadLogRequest {
  runId: string;
  task: string;
  /** The execution attempt whose log to read (each has its own). Default 1. */
  attempt?: number;
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
  /**
   * Where it was read: the runner that ran the task, or the object store (the runner is gone or
   * did not answer). Offsets are the same in both: a reader may move from one to the other.
   */
  source?: 'runner' | 'store';
  /** Why the log stops short, when it does: its runner is gone and never finished shipping it. */
  partial?: string;
}

/** Reads a task log from the object store (control workers, `activities/task-log-store.ts`). */
export interface ReadStoredLogRequest {
  runId: string;
  task: string;
  attempt: number;
  offset: number;
  limit: number;
}

/** A stored log chunk; `configured: false` when this worker has no object store. */
export type StoredLogAnswer = (LogChunk & { configured: true }) | { configured: false };

/** A task's stored artifacts: the archive's size and a link that downloads it for a while. */
export interface ArtifactLink {
  task: string;
  bytes: number;
  url: string;
}

export type ArtifactLinksAnswer = { configured: true; artifacts: ArtifactLink[] } | { configured: false };

export interface TaskLogStoreActivities {
  readStoredLog(req: ReadStoredLogRequest): Promise<StoredLogAnswer>;
  /** The run's stored artifacts (one task's when `task` is set), with links valid `seconds`. */
  artifactLinks(req: { runId: string; task?: string; seconds: number }): Promise<ArtifactLinksAnswer>;
}

/** Served on a pool's queues (`pool/<name>[/<driver>]`) by every runner of the pool with a free slot. */
export interface PoolActivities {
  reserveSlots(req: ReserveRequest): Promise<ReservationAnswer>;
}

/** A task's `runs_on`: the registered runners of a pool and driver that have every label. */
export interface MatchRunnersRequest {
  pool: string;
  driver: DriverName;
  labels: Record<string, string>;
}

export interface MatchRunnersAnswer {
  /** Names of the matching runners that take work now (ready, enabled), best first. */
  runners: string[];
  /** When none match: why, naming what the pool has (`3 runners in pool "p": a {os=mac}, ...`). */
  why: string | null;
}

/** Served by the control worker: reads the runner registry. */
export interface RunnerMatchActivities {
  matchRunners(req: MatchRunnersRequest): Promise<MatchRunnersAnswer>;
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
export type TaskLookup = ({ known: false } | { known: true; outcome: TaskOutcome | null }) & {
  /** The runner's signature over this answer (`src/security/runner-proof.ts`). */
  proof?: string;
};

/** How an execution ended, signed by the runner (`proof`, over run, task, attempt, lease and outcome). */
/**
 * A runner's answer to an execution: the outcome, its proof, and what the proof covers besides
 * the outcome (`said`), which the worker checks before the run does (src/codec/proof-check.ts).
 */
/** A runner's answer to a reservation: its leases, its proof and what the proof covers besides them (`said`). */
export type ReservationAnswer = Reservation & { said?: ReservationSaid };

export type ExecutionResult = TaskOutcome & { proof?: string; said?: ExecutionSaid };

export interface RunnerActivities {
  executeTask(req: ExecuteRequest): Promise<ExecutionResult>;
  /**
   * The run has cancelled an execution (a stop, a task cancel): heartbeat it now, so the runner
   * hears of the cancel at once instead of at its next heartbeat. It carries no authority of its
   * own: the cancel is what the server answers that heartbeat with. True when it runs here.
   */
  pokeTask(req: LookupTaskRequest): Promise<boolean>;
  lookupTask(req: LookupTaskRequest): Promise<TaskLookup>;
  readTaskLog(req: ReadLogRequest): Promise<LogChunk>;
}

/**
 * The session the registry workflow keeps on a runner's own queue: a long activity that the
 * runner heartbeats with its status (a heartbeat timeout is how the fleet learns it is gone).
 * The registry cancels it and starts the next generation to change what the runner must do.
 */
export type { SessionRequest };

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

/** Served by the control worker, which holds the data keys and the operator public key. */
export interface RegistryActivities {
  /**
   * Seals the data keys for a runner's public key (base64 SPKI DER, X25519), only once the
   * admission verifies: the operator signed the grant, the grant's token key signed this key.
   * `Unauthorized` otherwise (and for a request without admission).
   */
  sealDataKeys(req: { publicKey: string; admission?: Admission }): Promise<SealedKey[]>;
  /** `Unauthorized` unless the operator key signed this command, recently. */
  verifyOperatorCommand(req: { command: OperatorCommand; signature: string }): Promise<void>;
  /** `Unauthorized` unless the operator key signed this approval for the calling run, recently. */
  verifyApproval(req: { approval: ApprovalStatement; signature: string }): Promise<void>;
}

/** What the run verifies runner proofs with. */
export interface RunnerSigningKeys {
  /** False when the control workers run without enforcement (runners outside a registry): nothing is checked. */
  required: boolean;
  /** Each runner's `identity.signingKey` from its registry record; null when it has none (or no record). */
  keys: Record<string, string | null>;
  /**
   * The pool the operator admitted each runner with a key to (its grant's `pool`): a runner of
   * another pool may not answer this pool's reservations. Absent from answers recorded before it.
   */
  pools?: Record<string, string>;
}

/** Served by the control worker (trusted): the registry's record of each runner's signing key. */
export interface RunnerKeyActivities {
  /**
   * `fresh`: read the registry now (a run that refused a message asks again); otherwise a key
   * read in the last few seconds may be answered from the control worker's memory.
   */
  runnerSigningKeys(req: { runners: string[]; fresh?: boolean }): Promise<RunnerSigningKeys>;
  /**
   * The keys this control worker read from the registry in the last few seconds, of the runners
   * named and of the runners admitted to the pools named: memory only, no read of the registry.
   * A run asks it as a local activity when it starts, so
   * that the usual first answer from a runner needs no key lookup of its own (one workflow task
   * and one activity fewer). A runner it does not answer for is looked up as before.
   */
  knownRunnerKeys(req: { pools: string[]; runners: string[] }): Promise<RunnerSigningKeys>;
}

export type { PingReply };

/**
 * The fleet updates a run's fleet tasks make (`activities/fleet-lease.ts`), with the fleet's
 * errors as RunfleetErrors: the client library's `FleetClient` (`src/client/fleet.ts`).
 */
export interface FleetCalls {
  provision(fleet: string, req: ProvisionRequest): Promise<ProvisionResult>;
  startTask(fleet: string, req: HoldRequest): Promise<unknown>;
  release(fleet: string, req: HoldRequest): Promise<unknown>;
}

/**
 * The registry calls the fleet makes for its instances' runners (`activities/fleet-registry.ts`):
 * the client library's `RunnerAdmin` (`src/client/runners.ts`), which signs each grant with the
 * operator key it holds.
 */
export interface RunnerRegistryCalls {
  /** Creates the temporary runner of one instance (idempotent). */
  admit(req: AdmitRunnerRequest): Promise<unknown>;
  /** Purges a runner; `NotFound` when there is none. */
  purge(name: string, opts: { by?: string; reason?: string; waitMs?: number }): Promise<unknown>;
}
