/**
 * The workflow code's own CPU, measured by replay: every execution of a finished workflow's chain
 * replayed in this process (one replay worker, the side's bundle) a few rounds, its CPU (all
 * threads: process.cpuUsage) per 1,000 tasks. Nothing else competes for the cores then (no server
 * work, no runners), so two sides' figures compare the sandboxed workflow code and the SDK's work
 * around it alone, where a live window mixes them with the machine's load. A replay does what the
 * first execution did (the same activations, commands matched instead of sent), so it stands for
 * the workflow worker's execution of the run, not for its gRPC calls. Each round pays a replay
 * worker's start and a per-history setup: a figure for big runs, not for many one-task runs.
 */
import type { Client, HistoryAndWorkflowId } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { Worker } from '@temporalio/worker';

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

/** What a side's workflow worker runs: its bundle, and its data converter (none: the SDK's default). */
export interface ReplayedCode {
  workflowBundle: { code: string };
  dataConverter?: DataConverter;
}

interface Round {
  cpuMs: number;
  wallMs: number;
}

/**
 * Replays `runIds` of `workflowId` (fetched once) `ROUNDS` times with the side's `code`; a replay that
 * fails (nondeterminism, a failed workflow task) throws: the figure would not stand for the run.
 */
export async function replayCpu(
  client: Client,
  workflowId: string,
  runIds: readonly string[],
  code: ReplayedCode,
  tasks: number,
): Promise<ReplayCpu> {
  const histories: HistoryAndWorkflowId[] = [];
  for (const runId of runIds) {
    histories.push({ workflowId, history: await client.workflow.getHandle(workflowId, runId).fetchHistory() });
  }
  // A replay runs in this thread, where tsx turned source maps on: each `new Function` of the
  // SDK's promise hook would be searched for a source map, which a workflow thread never does.
  const sourceMaps = process.sourceMapsEnabled;
  process.setSourceMapsEnabled(false);
  let best: Round | undefined;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const measured = await replayRound(histories, code, `bench-${round}`);
      if (!best || measured.cpuMs < best.cpuMs) best = measured;
    }
  } finally {
    process.setSourceMapsEnabled(sourceMaps);
  }
  const { cpuMs, wallMs } = best as Round;
  return {
    executions: histories.length,
    cpuMsPer1000: Math.round((cpuMs * 1000) / tasks),
    wallMs: Math.round(wallMs),
  };
}

async function replayRound(histories: HistoryAndWorkflowId[], code: ReplayedCode, replayName: string): Promise<Round> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const results = Worker.runReplayHistories({ ...code, replayName }, histories);
  for await (const result of results) {
    if (result.error) {
      throw new Error(`replay of ${result.workflowId} (${result.runId}) failed: ${result.error.message}`);
    }
  }
  const cpu = process.cpuUsage(cpu0);
  return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - t0 };
}
