/**
 * The workflow code's own CPU, measured by replay: every execution of a finished workflow's chain
 * replayed in this process (one replay worker, the side's bundle) a few rounds, its CPU (all
 * threads: process.cpuUsage) per 1,000 tasks. Nothing else competes for the cores then (no server
 * work, no runners), so two sides' figures compare the sandboxed workflow code and the SDK's work
 * around it alone, where a live window mixes them with the machine's load. A replay does what the
 * first execution did (the same activations, commands matched instead of sent), so it stands for
 * the workflow worker's execution of the run, not for its gRPC calls.
 */
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { createDataConverter } from '../src/codec';

/** Rounds replayed; the cheapest is kept (the least disturbed by anything else on the machine). */
const ROUNDS = 3;

export interface ReplayCpu {
  /** Executions replayed each round. */
  executions: number;
  /** CPU ms per 1,000 tasks of the cheapest round. */
  cpuMsPer1000: number;
  /** That round's wall clock, ms. */
  wallMs: number;
}

/**
 * Replays `runIds` of `workflowId` (fetched once) `ROUNDS` times with `bundle`; a replay that
 * fails (nondeterminism, a failed workflow task) throws: the figure would not stand for the run.
 */
export async function replayCpu(
  client: Client,
  workflowId: string,
  runIds: readonly string[],
  bundle: { code: string },
  tasks: number,
): Promise<ReplayCpu> {
  const histories: { workflowId: string; history: temporal.api.history.v1.IHistory }[] = [];
  for (const runId of runIds) {
    histories.push({ workflowId, history: await client.workflow.getHandle(workflowId, runId).fetchHistory() });
  }
  let best: { cpuMs: number; wallMs: number } | undefined;
  for (let round = 0; round < ROUNDS; round++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const results = Worker.runReplayHistories(
      { workflowBundle: bundle, dataConverter: createDataConverter(), replayName: `bench-${round}` },
      histories,
    );
    for await (const result of results) {
      if (result.error) throw new Error(`replay of ${workflowId} (${result.runId}) failed: ${result.error.message}`);
    }
    const cpu = process.cpuUsage(cpu0);
    const measured = { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - t0 };
    if (!best || measured.cpuMs < best.cpuMs) best = measured;
  }
  const { cpuMs, wallMs } = best as { cpuMs: number; wallMs: number };
  return {
    executions: histories.length,
    cpuMsPer1000: Math.round((cpuMs * 1000) / tasks),
    wallMs: Math.round(wallMs),
  };
}
