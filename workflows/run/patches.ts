/**
 * The run workflow's patches, in one home. Each changed what a run records, and a run started
 * before it replays the old way (`patched()` is false there). The SDK records a marker and a
 * search-attribute upsert (`TemporalChangeVersion`) the first time a run meets each one, which a
 * one-task run paid three times over.
 *
 * A run started by this code asks one gate patch, at its start, instead: when the gate holds,
 * every patch below holds and none is asked (one marker, one upsert). A run started before the
 * gate (replaying, or resumed by a worker of this code mid-flight) finds no gate marker in its
 * history and asks each patch as it always did. A new patch is added here and asked through
 * `has` until a newer gate covers it.
 */
import { patched } from '@temporalio/workflow';

export const RUN_PATCHES = {
  /** Runs started before history size counted continue as new by event count alone. */
  historySize: 'continue-as-new-on-history-size',
  /** Approvals are checked against the operator key (a control activity) before they apply. */
  signedApprovals: 'signed-approvals',
  /**
   * The memo and search attributes are upserted only where they differ from the run's (the
   * start sets them): a run submitted by the client upserts once, when it ends.
   */
  fewerEvents: 'fewer-events-per-run',
  /** Runs started before `askRunner` existed replay without it. */
  askRunner: 'ask-runner-about-lost-tasks',
  /** Runs started before runner proofs replay without them (see workflows/runner-proofs.ts). */
  runnerProofs: 'runner-proofs',
  /** A cancelled execution's runner is asked to heartbeat at once (`pokeTask`), so it stops promptly. */
  stopPoke: 'stop-pokes-runner',
  /**
   * The last task a run has for a slot tells its runner to free the slot when it ends
   * (`releaseLease`), instead of the runner keeping it for the linger and the run dropping it.
   */
  releaseLastLease: 'release-last-lease',
} as const;

export type RunPatch = keyof typeof RUN_PATCHES;

/** Every patch of `RUN_PATCHES` at once, for runs started from here on. */
const GATE = 'run-patches-2026-12';

export interface RunPatches {
  /** True when this run takes the patch's way (`patched()`, or the gate's answer for all). */
  has(patch: RunPatch): boolean;
}

/** Asks the gate: call once, first thing in the run, before any command. */
export function runPatches(): RunPatches {
  const all = patched(GATE);
  return { has: (patch) => all || patched(RUN_PATCHES[patch]) };
}
