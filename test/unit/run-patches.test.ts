/**
 * The run workflow's patch gates (src/run/patches.ts): a gate, once recorded in a history or given
 * in a run's argument, must keep meaning what it meant, and the newest must cover every patch (a
 * run started now takes every new way without asking one patch at a time).
 */
import { describe, expect, it } from 'vitest';
import { RUN_PATCHES, RUN_PATCH_GATE, RUN_PATCH_GATES, runPatchGate, type RunPatch } from '../../src/run/patches';

const covers = (name: string) => [...(runPatchGate(name)?.covers ?? [])].sort();

describe('run patch gates', () => {
  it('the newest gate, given to every run started now, covers every patch', () => {
    expect(RUN_PATCH_GATE).toBe(RUN_PATCH_GATES[0].name);
    expect(covers(RUN_PATCH_GATE)).toEqual((Object.keys(RUN_PATCHES) as RunPatch[]).sort());
  });

  it('the gates in histories keep what they covered when recorded', () => {
    const first = [
      'askRunner',
      'fewerEvents',
      'historySize',
      'releaseLastLease',
      'runnerProofs',
      'signedApprovals',
      'stopPoke',
    ];
    expect(covers('run-patches-2026-12')).toEqual(first);
    expect(covers('run-patches-2026-12b')).toEqual([...first, 'queueOnLease'].sort());
    expect(covers('run-patches-2026-12c')).toEqual(
      [...first, 'queueOnLease', 'prefetchKeys', 'reservationScope'].sort(),
    );
    expect(covers('run-patches-2026-12d')).toEqual(
      [...first, 'queueOnLease', 'prefetchKeys', 'reservationScope', 'sharedKeyRead'].sort(),
    );
    expect(runPatchGate('run-patches-2099')).toBeUndefined();
  });

  it('each gate covers all that the one before it did', () => {
    for (let i = 0; i + 1 < RUN_PATCH_GATES.length; i++) {
      const newer = RUN_PATCH_GATES[i]!;
      const older = RUN_PATCH_GATES[i + 1]!;
      for (const patch of older.covers) expect(newer.covers.has(patch), `${newer.name} covers ${patch}`).toBe(true);
    }
  });
});
