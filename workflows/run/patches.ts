/**
 * Which of the run workflow's patches (src/run/patches.ts) this run takes: the gate its argument
 * names (nothing asked, nothing recorded), or else the gates asked through `patched()` at its
 * start, then each patch its gate does not cover.
 */
import { patched } from '@temporalio/workflow';
import { RUN_PATCHES, RUN_PATCH_GATES, type RunPatch, type RunPatchGate } from '../../src/run/patches';

export interface RunPatches {
  /** True when this run takes the patch's way (`patched()`, or its gate's answer). */
  has(patch: RunPatch): boolean;
}

/**
 * Call once, first thing in the run, before any command. `given`: the gate named in the run's
 * argument, already checked (workflows/run/input.ts). Without one the gates are asked, newest
 * first, so a run started now records one marker.
 */
export function runPatches(given: RunPatchGate | undefined): RunPatches {
  const gate = given ?? RUN_PATCH_GATES.find((g) => patched(g.name));
  return { has: (patch) => gate?.covers.has(patch) === true || patched(RUN_PATCHES[patch]) };
}
