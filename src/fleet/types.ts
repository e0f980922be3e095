/**
 * Glossary of the EC2 fleet (issue 4)
 *
 * - Fleet: a named set of EC2 runner instances, described by a desired state (a fleet file) and
 *   held by one entity workflow, `fleet/<name>`, on the `runfleet-fleet` task queue.
 * - Resource class: a kind of instance (an instance type, a warm-pool size, a cap). Each has a
 *   launch template `runfleet-<fleet>-<class>` and a pool (the task queue its runners serve).
 * - Record: what the fleet knows about one instance: its state and a threshold timestamp past
 *   which maintenance terminates it. Every transition is conditional and bumps `version`.
 * - Instance states: `created` (launched, its runner not registered yet), `idle` (registered,
 *   free), `claimed` (taken by a task), `running` (the task started), `terminated` (phase 1 of a
 *   termination done: EC2 still to confirm; then the record and its artifacts are deleted).
 * - Artifacts: what else exists for an instance: its runner's registry workflow
 *   (`runner/<instance id>`, which holds the runner's identity and session heartbeats) and the
 *   fleet's registration entry. Deleted only after EC2 confirms the termination.
 * - Registration token: the fleet token is short-lived, rotated on a schedule, stored as a
 *   SHA-256 hash, and never given out. Each launched instance gets a token of its own, derived
 *   from it, in its user data, and a registry runner that accepts that token only, once; after
 *   the fleet token's lifetime it registers nothing.
 * - Refresh: one reconciliation of desired with actual state (launch templates, instances by
 *   tag, records, tokens). The fleet workflow runs refreshes one at a time.
 *
 * Plain JSON only: this state crosses continue-as-new. Sandbox-safe.
 */
import type { FleetSpec } from './schema';
import type { FleetLink } from '../registry/types';

export type { FleetLink };

export const INSTANCE_STATES = ['created', 'idle', 'claimed', 'running', 'terminated'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

/** States maintenance may terminate once past their threshold. */
export const LIVE_STATES: readonly InstanceState[] = ['created', 'idle', 'claimed', 'running'];

export interface InstanceRecord {
  instanceId: string;
  resourceClass: string;
  state: InstanceState;
  /** ISO time past which maintenance terminates the instance (meaning depends on the state). */
  threshold: string;
  launchedAt: string;
  stateSince: string;
  /** Bumped by every transition: a conditional update names the version it saw. */
  version: number;
  /** The runner registered on this instance. */
  runner: string | null;
  /** The provision request holding the instance (claimed, running), or waiting for it (created). */
  claimedBy: string | null;
  /** Why the record was marked terminated. */
  reason: string | null;
  /** TerminateInstances calls made so far (phase 2). */
  terminateAttempts: number;
}

export interface TokenRecord {
  id: string;
  /** Hex SHA-256 of the token: the token itself is never stored. */
  hash: string;
  mintedAt: string;
  expiresAt: string;
}

export interface Registration {
  runner: string;
  instanceId: string | null;
  tokenId: string;
  registeredAt: string;
}

export interface Pool {
  resourceClass: string;
  /** The task queue the class's runners reserve work from. */
  taskQueue: string;
}

/** What one refresh did, for `fleet status` and the benchmark. */
export interface RefreshSummary {
  startedAt: string;
  finishedAt: string;
  changes: number;
  templatesCreated: number;
  templatesUpdated: number;
  launched: number;
  markedTerminated: number;
  confirmedTerminated: number;
  orphansTerminated: number;
  closed: number;
  tokenRotated: boolean;
  ec2Calls: { read: number; mutating: number };
  /** Why the refresh stopped early (the next one picks up), or null. */
  error: string | null;
  /** The error's code (src/errors.ts), when it had one. */
  errorType: string | null;
}

export interface FleetState {
  name: string;
  /** The desired state last applied; null until the first `apply`. */
  spec: FleetSpec | null;
  records: Record<string, InstanceRecord>;
  /** Artifact: registered runners by name. */
  registrations: Record<string, Registration>;
  tokens: TokenRecord[];
  pools: Record<string, Pool>;
  lastRefresh: RefreshSummary | null;
  refreshes: number;
  /** Next subnet for a launch (round robin over the spec's subnets). */
  subnetCursor: number;
}

/** The instance's runner registered with a valid fleet token: the instance goes from created to idle. */
export interface RunnerRegistered {
  runner: string;
  instanceId: string;
  tokenId: string;
}

/** The instance's runner was purged (lost, or by an operator): the instance can serve no task. */
export interface RunnerGone {
  runner: string;
  instanceId: string;
  by: string;
  reason: string;
}

/** `provision`: a task claims an instance of a resource class (launching one when none is idle). */
export interface ProvisionRequest {
  resourceClass: string;
  /** Idempotency key: the same request gets the same instance. */
  requestId: string;
  /** The claim lasts this long unless renewed. Default 1 h. */
  leaseMs?: number;
  /** How long to wait for a new instance's runner to register. Default: the spec's registrationTimeout. */
  waitMs?: number;
  /** Launch an instance when none is idle. Default true; false fails at once instead. */
  launch?: boolean;
}

export interface ProvisionResult {
  instanceId: string;
  runner: string;
  resourceClass: string;
  /** The runner's own task queue, where the task goes. */
  taskQueue: string;
  launched: boolean;
}

/** `startTask`, `renew`, `release`: what the request holding an instance says about it. */
export interface HoldRequest {
  instanceId: string;
  requestId: string;
  leaseMs?: number;
}

export function initialFleetState(name: string): FleetState {
  return {
    name,
    spec: null,
    records: {},
    registrations: {},
    tokens: [],
    pools: {},
    lastRefresh: null,
    refreshes: 0,
    subnetCursor: 0,
  };
}
