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
 * `has` until a newer gate covers it (`GATES`, newest first).
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
  /**
   * A ready task is queued behind a busy lease whose last task was short: the runner starts it
   * the moment that one ends (leases.ts). After the first gate: the second covers it.
   */
  queueOnLease: 'queue-on-busy-lease',
} as const;

export type RunPatch = keyof typeof RUN_PATCHES;

/**
 * The gates, newest first: each stands for the patches it lists, and a run asks the next one only
 * when the one before does not hold (so a run started now asks one and records one marker). A
 * run started under an older gate replays under it and asks each patch it does not cover.
 */
const GATES: readonly { name: string; covers: ReadonlySet<RunPatch> }[] = [
  { name: 'run-patches-2026-12b', covers: new Set(Object.keys(RUN_PATCHES) as RunPatch[]) },
  {
    name: 'run-patches-2026-12',
    covers: new Set<RunPatch>([
      'historySize',
      'signedApprovals',
      'fewerEvents',
      'askRunner',
      'runnerProofs',
      'stopPoke',
      'releaseLastLease',
    ]),
  },
];

export interface RunPatches {
  /** True when this run takes the patch's way (`patched()`, or its gate's answer). */
  has(patch: RunPatch): boolean;
}

/** Asks the gates: call once, first thing in the run, before any command. */
export function runPatches(): RunPatches {
  const gate = GATES.find((g) => patched(g.name));
  return { has: (patch) => gate?.covers.has(patch) === true || patched(RUN_PATCHES[patch]) };
}
