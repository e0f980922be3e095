/**
 * The runner registry's data: a runner's record, settings, the requests the registry workflow
 * accepts and what it answers. Pure types (and the status list): the registry's state module,
 * the codec and the clients use them; `workflows/runner-messages.ts` pairs them with the
 * workflow's signals, queries and updates.
 */
import type { DriverName } from '../types';
import type { OperatorSignature, RegistrationProof, TokenGrant } from '../security/statements';

export type { OperatorSignature };

/** A registry runner's link to the fleet instance it runs on. */
export interface FleetLink {
  /** The fleet: workflow `fleet/<name>`. */
  name: string;
  instanceId: string;
}

/** Where the fleet sees a runner. */
export const RUNNER_STATUSES = ['registered', 'ready', 'disabled', 'idle', 'lost', 'deleted'] as const;
export type RunnerStatus = (typeof RUNNER_STATUSES)[number];

/** What the fleet hands a runner when it registers or connects (and may change later). */
export interface RunnerSettings {
  /** Tasks run at once (the pool size). */
  slots: number;
  /** A reserved slot not used in this time is given back. */
  evictionMs: number;
  /** How often the runner heartbeats its session (status travels with the heartbeat). */
  heartbeatMs: number;
  /** How often the runner pings the server. */
  pingMs: number;
  /** No successful ping for this long: the runner restarts its connection (then goes idle). */
  watchdogMs: number;
}

/** A data key sealed for one runner's public key (X25519 + HKDF + AES-256-GCM). */
export interface SealedKey {
  id: string;
  /** base64 of the sealed box. */
  sealed: string;
}

/**
 * The answer to `register` and `connect`. Its `kind` makes the payload converter keep it out
 * of the encryption codec (the runner has no key yet); nothing in it is secret in clear.
 */
export interface RegistrationGrant {
  kind: 'runfleet/key-delivery';
  name: string;
  runnerId: string;
  pool: string;
  labels: Record<string, string>;
  temporary: boolean;
  enabled: boolean;
  settings: RunnerSettings;
  /** The current data key first. */
  keys: SealedKey[];
}

/**
 * `runner create` / `runner token`: admit a registration token. Only the token's public key
 * travels, in a grant the operator key signed; the control worker checks that signature before
 * it seals any data key.
 */
export interface IssueTokenRequest {
  tokenId: string;
  expiresAt: string;
  by: string;
  /** The operator's statement: this token key may register this runner (pool, labels) until expiresAt. */
  grant?: TokenGrant;
  /** base64 Ed25519 signature of `grant` by the operator key. */
  signature?: string;
  /** Before operator-signed admission: the sha256 hex of the token (kept so old histories replay). */
  tokenHash?: string;
}

/** The workflow's argument, as `runner create` starts it. */
export interface RunnerWorkflowInput {
  name: string;
  pool: string;
  labels?: Record<string, string>;
  temporary?: boolean;
  settings?: Partial<RunnerSettings>;
  /** The EC2 fleet instance this runner runs on: the registry tells that fleet when it registers or goes. */
  fleet?: FleetLink;
  /** Set by the workflow itself when it continues as new. */
  resume?: unknown;
}

/**
 * First start of a runner: it proves it holds the token (the token key signs its identity) and
 * its identity is kept from then on. The token itself never leaves the runner host.
 */
export interface RegisterRequest {
  runnerId: string;
  /** base64 of the runner's X25519 public key (SPKI DER). */
  publicKey: string;
  /** base64 of the runner's raw Ed25519 identity public key (it signs what the runner says). */
  signingKey?: string;
  /** The token key's statement over this runner's name, id, keys and the time. */
  proof?: RegistrationProof;
  /** base64 Ed25519 signature of `proof` by the token key. */
  proofSignature?: string;
  /** Before operator-signed admission: the token in clear (kept so old histories replay). */
  token?: string;
  version: string;
  drivers: DriverName[];
  hostname: string;
}

/** Every later start of a registered runner: same identity, no token. */
export interface ConnectRequest {
  runnerId: string;
  version: string;
  drivers: DriverName[];
  hostname: string;
  /** A new id every process start: tells the fleet the runner restarted. */
  bootId: string;
}

export interface AdminRequest {
  by: string;
  reason?: string;
  /**
   * The operator key's signature over this request, the runner and the action (purge, configure,
   * enable, disable): see `operatorCommand` in src/security/statements.ts.
   */
  operator?: OperatorSignature;
}

/** What the control worker checks before the registry seals data keys for a runner. */
export interface Admission {
  grant: TokenGrant;
  /** The operator's signature of `grant`. */
  signature: string;
  proof: RegistrationProof;
  /** The token key's signature of `proof`. */
  proofSignature: string;
}

/** Status a runner reports with its session heartbeats and in answer to a ping. */
export interface RunnerLiveStatus {
  runnerId: string;
  bootId: string;
  version: string;
  drivers: DriverName[];
  slots: number;
  free: number;
  accepting: boolean;
  /** `<runWorkflowId>/<task>` of each task running on it. */
  running: string[];
  at: string;
}

export interface PingReply {
  status: RunnerLiveStatus;
  /** Round trip from the workflow to the runner and back, workflow time. */
  roundTripMs: number;
}

/** A task of a run that became lost on this runner (sent by the run). */
export interface LostTaskRef {
  runWorkflowId: string;
  task: string;
  attempt: number;
}

/** What `runner describe` and `runner list` show (the `record` query). */
export interface RunnerRecord {
  name: string;
  pool: string;
  labels: Record<string, string>;
  temporary: boolean;
  /** The EC2 fleet instance it runs on (set by the fleet that launched it); null otherwise. */
  fleet: FleetLink | null;
  status: RunnerStatus;
  enabled: boolean;
  settings: RunnerSettings;
  token: { id: string; expiresAt: string; revoked: boolean; used: boolean; key?: string } | null;
  identity: {
    runnerId: string;
    /** base64 X25519 public key (SPKI DER): the data keys are sealed for it. */
    publicKey: string;
    /**
     * base64 of the runner's raw 32-byte Ed25519 identity public key, admitted with the
     * operator-signed registration; absent for runners registered before it.
     */
    signingKey?: string;
    version: string;
    drivers: DriverName[];
    hostname: string;
    registeredAt: string;
  } | null;
  bootId: string | null;
  /** Last time the runner was seen (session start, connect, ping). */
  lastSeenAt: string | null;
  /** Why the status is what it is (e.g. "no session heartbeat for 20s"). */
  reason: string | null;
  lostTasks: LostTaskRef[];
  createdAt: string;
  history: { at: string; status: RunnerStatus; reason: string | null; by: string | null }[];
}

/** What the registry hands a runner's session (`runnerSession` on the runner's own queue). */
export interface SessionRequest {
  generation: number;
  enabled: boolean;
  settings: RunnerSettings;
  /** Set on purge: the runner wipes its state directory and exits 0. */
  delete?: { by: string; reason: string };
}

/** A fleet instance's temporary runner, admitted by the fleet (`RunnerAdmin.admit`). */
export interface AdmitRunnerRequest {
  /** The runner's name: by convention the instance id. */
  name: string;
  pool: string;
  labels?: Record<string, string>;
  fleet: FleetLink;
  /**
   * The instance's registration token: its id (hex), its public key (`parseToken(token).key.publicKey`)
   * and expiry. Its clear text stays in the instance's user data.
   */
  token: { id: string; publicKey: string; expiresAt: string };
  settings?: Partial<RunnerSettings>;
  by?: string;
}
