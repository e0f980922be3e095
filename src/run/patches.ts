/**
 * The run workflow's patches and their gates, in one home (pure data: the workflow asks them in
 * workflows/run/patches.ts; whoever starts a run names the newest gate, `RUN_PATCH_GATE`). Each
 * patch changed what a run records, and a run started before it replays the old way. The SDK
 * records a marker and a search-attribute upsert (`TemporalChangeVersion`) the first time a run
 * asks each one, which a one-task run paid three times over.
 *
 * A gate stands for every patch it covers. A run is told its gate one of two ways:
 * - in its argument (`patchGate`): `runfleet run submit`, a changegroup and a runner's schedule
 *   start runs so. Nothing is asked and nothing recorded: no marker, no upsert;
 * - or, started without one (`temporal workflow start`, or before the argument existed), by
 *   asking the gates (`patched()`) at its start, newest first: one marker and one upsert.
 * A run started before the first gate finds no gate marker in its history and asks each patch as
 * it always did. A new patch is added to `RUN_PATCHES` and asked on its own until a newer gate,
 * added at the head of `RUN_PATCH_GATES`, covers it.
 */
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
   * the moment that one ends (workflows/run/leases.ts). After the first gate: the second covers it.
   */
  queueOnLease: 'queue-on-busy-lease',
  /**
   * A run asks its control worker for the runner keys it already knows when it starts (a local
   * activity, workflows/runner-proofs.ts), so its first answers need no key lookup of their own.
   */
  prefetchKeys: 'prefetch-runner-keys',
  /**
   * A reservation answer is taken only from a runner of the pool asked (the pool its grant names)
   * or the runner asked by name, for leases on its own queue (`reservationScopeProblem`).
   */
  reservationScope: 'reservation-scope-checked',
  /**
   * A runner's key read is shared by every message waiting for it, so a caller given up (a
   * surplus reservation, a stopped run) no longer cancels it: each caller stops waiting instead.
   * Before, the others waiting were refused ("its signing key could not be read"), and so was the
   * caller itself, recorded as a refusal.
   */
  sharedKeyRead: 'shared-key-read-not-cancelled',
} as const;

export type RunPatch = keyof typeof RUN_PATCHES;

export interface RunPatchGate {
  name: string;
  covers: ReadonlySet<RunPatch>;
}

/** What each gate covers: the one before it and the patches added since (a gate never changes). */
const FIRST_GATE: readonly RunPatch[] = [
  'historySize',
  'signedApprovals',
  'fewerEvents',
  'askRunner',
  'runnerProofs',
  'stopPoke',
  'releaseLastLease',
];
const SECOND_GATE: readonly RunPatch[] = [...FIRST_GATE, 'queueOnLease'];
const THIRD_GATE: readonly RunPatch[] = [...SECOND_GATE, 'prefetchKeys', 'reservationScope'];
const FOURTH_GATE: readonly RunPatch[] = [...THIRD_GATE, 'sharedKeyRead'];

/** The gates, newest first. A gate, once a run has recorded or been given it, never changes. */
export const RUN_PATCH_GATES: readonly [RunPatchGate, ...RunPatchGate[]] = [
  { name: 'run-patches-2026-12d', covers: new Set(FOURTH_GATE) },
  { name: 'run-patches-2026-12c', covers: new Set(THIRD_GATE) },
  { name: 'run-patches-2026-12b', covers: new Set(SECOND_GATE) },
  { name: 'run-patches-2026-12', covers: new Set(FIRST_GATE) },
];

/** The gate a run started now is given in its argument (`patchGate`): the newest. */
export const RUN_PATCH_GATE = RUN_PATCH_GATES[0].name;

/** The gate of that name, or undefined when this code does not know it. */
export function runPatchGate(name: string): RunPatchGate | undefined {
  return RUN_PATCH_GATES.find((g) => g.name === name);
}
