/**
 * The state of one changegroup and every change to it, as pure functions: the changegroup
 * workflow (workflows/changegroup.ts) registers handlers that call these, unit tests drive
 * them directly.
 *
 * Glossary
 * - Changegroup: a name (a project, a branch) that runs are submitted to. It holds a version,
 *   an optional limit of active runs, the runs active now and the runs waiting, in order.
 * - Version: bumped by every mutation (a run submitted, a run released, the limit changed, a
 *   token-checked call). An update token carries the versions a client read; a mutation with a
 *   token whose version is not the current one is refused with `Conflict`.
 * - Active: admitted runs that have not released their slot yet. Queued: runs waiting for a
 *   slot, in submission order (FIFO).
 *
 * Plain JSON (it crosses continue-as-new) and sandbox-safe. Finished runs are forgotten: the
 * state grows with active and queued runs only, never with history.
 */

export interface ChangegroupState {
  name: string;
  /** Bumped by every mutation; 0 for a changegroup nobody has changed yet. */
  version: number;
  /** At most this many active runs; null: no limit. */
  limit: number | null;
  /** Workflow ids of admitted runs, in admission order. */
  active: string[];
  /** Workflow ids of runs waiting for a slot, first to be admitted first. */
  queued: string[];
  /** Runs ever submitted (a counter, not a list): the next run's place in submission order is this + 1. */
  submitted: number;
}

/** What the `state` query of a changegroup returns (and `runfleet changegroup show --json`). */
export type ChangegroupView = ChangegroupState;

/** What a mutation asks the workflow to do besides changing the state: runs to send `admit`, in order. */
export interface Effects {
  admit: string[];
}

export interface Submitted {
  /** The run's place in the changegroup's submission order (1, 2, ...). */
  seq: number;
  /** True when the run was admitted at once; false when it waits in the queue. */
  admitted: boolean;
  /** The changegroup's version after the submission. */
  version: number;
}

/** A limit is a whole number of runs from 1 to this (Temporal holds at most 2,000 pending children anyway). */
export const MAX_LIMIT = 1000;

export function initialState(name: string): ChangegroupState {
  return { name, version: 0, limit: null, active: [], queued: [], submitted: 0 };
}

/** Why a limit is not acceptable, or null when it is (`null` itself means no limit). */
export function limitProblem(limit: unknown): string | null {
  if (limit === null) return null;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    return `a changegroup limit is a whole number from 1 to ${MAX_LIMIT} (or none); got ${JSON.stringify(limit)}`;
  return null;
}

/** Why a token's version does not allow a mutation now, or null when it does (no token: always allowed). */
export function staleTokenProblem(state: ChangegroupState, expectedVersion: number | undefined): string | null {
  if (expectedVersion === undefined || expectedVersion === state.version) return null;
  return `changegroup "${state.name}" changed since the update token was read (token version ${expectedVersion}, now ${state.version}); read a new token and try again`;
}

/** True when the run is recorded (active or queued). */
export function hasRun(state: ChangegroupState, runId: string): boolean {
  return state.active.includes(runId) || state.queued.includes(runId);
}

/**
 * Records a new run: active at once when a slot is free, otherwise at the end of the queue.
 * The caller sends `admit` to an admitted run once its workflow has started.
 */
export function submit(state: ChangegroupState, runId: string): Submitted {
  state.version++;
  state.submitted++;
  const admitted = state.queued.length === 0 && hasFreeSlot(state);
  if (admitted) state.active.push(runId);
  else state.queued.push(runId);
  return { seq: state.submitted, admitted, version: state.version };
}

/** Changes the limit; a higher limit admits queued runs at once (a lower one stops no active run). */
export function setLimit(state: ChangegroupState, limit: number | null): Effects {
  state.version++;
  state.limit = limit;
  return { admit: admitQueued(state) };
}

/** A token-checked call that changes nothing else: the version moves so the token is spent. */
export function touch(state: ChangegroupState): void {
  state.version++;
}

/**
 * A run ended (it sent `release`) or is gone: drops it, active or queued, and admits the next
 * queued runs in order. Unknown runs change nothing (a release may come twice).
 */
export function release(state: ChangegroupState, runId: string): Effects {
  const wasActive = state.active.includes(runId);
  const wasQueued = state.queued.includes(runId);
  if (!wasActive && !wasQueued) return { admit: [] };
  state.version++;
  state.active = state.active.filter((id) => id !== runId);
  state.queued = state.queued.filter((id) => id !== runId);
  return { admit: admitQueued(state) };
}

function hasFreeSlot(state: ChangegroupState): boolean {
  return state.limit === null || state.active.length < state.limit;
}

function admitQueued(state: ChangegroupState): string[] {
  const admitted: string[] = [];
  while (state.queued.length > 0 && hasFreeSlot(state)) {
    const next = state.queued.shift() as string;
    state.active.push(next);
    admitted.push(next);
  }
  return admitted;
}
