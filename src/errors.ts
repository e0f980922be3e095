/**
 * One error taxonomy for Runfleet. Every error has a stable `code` and a `source`:
 * `user` (the input is wrong: fix it and try again) or `internal` (Runfleet or its
 * infrastructure failed). Match by code, or by an ApplicationFailure's `type`, never by message.
 *
 * Sandbox-safe: workflows import it.
 */

export const ERROR_CODES = {
  /** A run spec failed validation (schema or graph). */
  InvalidRunSpec: { source: 'user', retryable: false },
  /** A workflow was started with an argument that is not what it takes. */
  InvalidWorkflowInput: { source: 'user', retryable: false },
  /** A configuration file, flag or environment variable is wrong. */
  InvalidConfig: { source: 'user', retryable: false },
  /** A command-line argument is wrong. */
  InvalidArgument: { source: 'user', retryable: false },
  /** The run, task or runner named does not exist. */
  NotFound: { source: 'user', retryable: false },
  /** A run with this id exists already. */
  AlreadyExists: { source: 'user', retryable: false },
  /** The operation does not apply in the current state (approve a finished task, ...). */
  InvalidState: { source: 'user', retryable: false },
  /**
   * A changegroup changed since the update token passed to a mutating call was read (another
   * caller won the race): nothing was done. Read a fresh token (and the state) and try again.
   */
  Conflict: { source: 'user', retryable: false },
  /**
   * A runner's registration token (or identity) was refused: unknown, expired, revoked or used
   * already. The runner must get a new token (`runfleet runner token NAME`); retrying cannot help.
   */
  TokenRejected: { source: 'user', retryable: false },
  /**
   * An operator credential is missing or does not verify: a token grant or command not signed
   * by the operator key the control workers trust, a registration not admitted by one, a signed
   * command too old or already used. Sign with the operator key file (`runfleet operator-key
   * create`); retrying the same request cannot help.
   */
  Unauthorized: { source: 'user', retryable: false },
  /** The Temporal server cannot be reached. */
  ServerUnreachable: { source: 'internal', retryable: true },
  /**
   * The server or a worker did not answer in time (a query no control worker answered, a call
   * past its deadline while the service recovers): asking again later may succeed.
   */
  NoAnswer: { source: 'internal', retryable: true },
  /** A runner has no free slot for a reservation. */
  NoFreeSlot: { source: 'internal', retryable: true },
  /**
   * A fleet resource class is at its maxInstances with no instance free: a task waits for one to
   * be released (or the cap raised) and asks again.
   */
  CapacityExhausted: { source: 'internal', retryable: true },
  /** A task came on a lease the runner had given back, and no slot was free: nothing started. */
  LeaseExpired: { source: 'internal', retryable: false },
  /** A task asked for a driver this runner does not offer. */
  DriverUnavailable: { source: 'user', retryable: false },
  /**
   * The runner refuses what a task asks of it: root in its container where the runner does not
   * allow it, limits above the runner's maxima, a working_dir that leaves its workspace on disk.
   */
  TaskRefused: { source: 'user', retryable: false },
  /** The task's process could not be started (shell missing, working directory invalid). */
  TaskSpawnFailed: { source: 'internal', retryable: false },
  /** A component (server binary, engine) could not be installed or started. */
  ComponentUnavailable: { source: 'internal', retryable: false },
  /** Anything else. */
  Internal: { source: 'internal', retryable: false },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
export type ErrorSource = 'user' | 'internal';

/** Failure types that activity retry policies must never retry. */
export const NON_RETRYABLE_TYPES: string[] = Object.entries(ERROR_CODES)
  .filter(([, v]) => !v.retryable)
  .map(([k]) => k);

export class RunfleetError extends Error {
  readonly code: ErrorCode;
  readonly source: ErrorSource;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'RunfleetError';
    this.code = code;
    this.source = ERROR_CODES[code].source;
    this.details = details;
  }

  get isUserError(): boolean {
    return this.source === 'user';
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}
