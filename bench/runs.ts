/**
 * Big-run benchmark (issue 5): a 10,000-task run and 1,000 concurrent small runs, each against
 * bare Temporal doing the same number of activities on the same server in the same invocation
 * (no-op ones, and ones that each spawn `/bin/sh -c true`, the process a Runfleet task of `true`
 * costs too), and listing runs by group with 10,000 finished runs stored.
 *
 *   npx tsx bench/runs.ts             # --tasks 10000 --runs 1000 --stored 10000 (~12 min on 2 cores)
 *   npx tsx bench/runs.ts --quick     # --tasks 2000 --runs 200 --stored 2000 (~3 min)
 *
 * Options: --tasks N  --runs N  --stored N  --k 2  --slots 50  --concurrency 50  --samples 50
 *          --cache 500 (both sides' workflow cache: the control worker's default)
 *          --timeout 900 (s per side)  --quick
 *
 * One headless in-memory dev server of its own, the production topology of bench/run.ts (the
 * workflow worker in this process, every runner / activity worker a process of its own, started
 * for the side and stopped after it):
 *  1. Big run: one Runfleet run of N independent tasks `steps: ['true']` on K runners
 *     (`runfleet runner serve`, S slots) vs `baselineWindowWorkflow`: N no-op activities, at most
 *     1,000 pending, continuing as new at 5,000 events, on K baseline workers (concurrency S);
 *     and the same with activities that spawn `/bin/sh -c true` (the spawn baseline).
 *     Tasks/s (N / start to result), ratios, and each side's chain of executions (count and the
 *     longest history, from visibility).
 *  2. Concurrent runs: R Runfleet runs of one task each vs R bare workflows of one no-op activity
 *     (and of one spawning activity), started with at most C start calls in flight; total tasks/s
 *     (R / first start to last result), ratios, run latency p50/p95 (start call to result).
 *  Parts 1 and 2 print CPU-seconds per 1,000 tasks by process class for every side (bench/cpu.ts,
 *  as bench/run.ts reads them), and each side's total against the spawn baseline's.
 *  3. Listing: M finished runs under one group tree (part 2's runs plus runs of one task, every
 *     tenth failing), then `listRunsPage` (first page, deeper pages through the token, filtered by
 *     result) and `countRuns`, `--samples` calls each: latency p50/p95.
 * Results: tables on stdout and `.bench/runs-<timestamp>.json`. A measurement, not a test: exits 0
 * whatever the figures, non-zero only on errors.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { RunfleetClient, type ListRunsFilter } from '../src/client/client';
import { createDataConverter } from '../src/codec';
import { runWorkflowId } from '../src/ids';
import type { RunState } from '../src/types';
import { stopRunSignal } from '../workflows/run-messages';
import type {
  BaselineActivity,
  BaselineInput,
  BaselineResult,
  BaselineWindowInput,
  BaselineWindowResult,
} from './baseline-workflows';
import { cpuDelta, readCpu, type CpuBreakdown } from './cpu';
import { historyStats } from './history';
import { replayCpu, type ReplayCpu } from './replay';
import { freeMetricsAddress, histogramMean, scrape, type Samples } from './sdk-metrics';
import { installBenchRuntime } from './runtime';
import {
  machineInfo,
  resultsFile,
  round1,
  sleep,
  startBaselineFleet,
  startRunfleetFleet,
  stateFilesystemLine,
  unique,
  withBenchServer,
  type Fleet,
} from './topology';
import { RssSampler, formatTable, mib, percentile } from './stats';

/** The bare big workflow: pending activities at most (Temporal: 2,000) and where it continues as new. */
const BASELINE_MAX_PENDING = 1_000;
const BASELINE_CONTINUE_AT_EVENTS = 5_000;
/** Temporal's history warning threshold: no execution should reach it. */
const HISTORY_WARNING = 10_240;
/** The stored runs' group tree; part 2's runs go under it too. */
const STORED_GROUP = '/bench/stored';
/** Workflows in flight (start to result) while storing runs. */
const STORE_CONCURRENCY = 100;

interface Args {
  tasks: number;
  runs: number;
  stored: number;
  k: number;
  slots: number;
  /** Workflows each side's workflow worker keeps cached (`maxCachedWorkflows`). */
  cache: number;
  concurrency: number;
  samples: number;
  timeoutMs: number;
  quick: boolean;
  /**
   * How part 3 makes its runs: `stopped` (default, cheap) starts each run with its stop signal
   * (signal-with-start), so it ends `cancelled` / `stopped` at once without dispatching; `executed`
   * runs its one task on runners (every tenth `false`, so it fails).
   */
  store: 'stopped' | 'executed';
}

interface Ctx {
  address: string;
  /** Temporal's pids (bench/cpu.ts reads each and its descendants). */
  serverPids: number[];
  /** Where this process's SDK serves its metrics (bench/sdk-metrics.ts). */
  metricsAddress: string;
  client: Client;
  rf: (controlQueue: string) => RunfleetClient;
  runfleetBundle: { code: string };
  baselineBundle: { code: string };
  rss: RssSampler;
  args: Args;
}

/** What a side's measured window (start call to result) gives, for n tasks. */
interface Window {
  wallMs: number;
  tasksPerSec: number;
  /** CPU by process class (bench/cpu.ts). */
  cpu: CpuBreakdown;
  peakRssMiB: number;
  workersPeakRssMiB: number;
}

/**
 * Opens a side's measured window: peak RSS, CPU over its processes (bench/cpu.ts: the dev server,
 * this process, the side's worker processes and the task processes they reap) and the wall clock.
 */
function openWindow(ctx: Ctx, fleet: Fleet): { close(n: number): Window } {
  const readCpuNow = () =>
    readCpu(
      ctx.serverPids,
      fleet.children.map((c) => c.pid),
    );
  ctx.rss.resetWindow();
  const cpu0 = readCpuNow();
  const t0 = Date.now();
  return {
    close(n) {
      const wallMs = Date.now() - t0;
      return {
        wallMs,
        tasksPerSec: round1((n * 1000) / wallMs),
        cpu: cpuDelta(cpu0, readCpuNow(), n),
        peakRssMiB: mib(ctx.rss.windowPeakBytes),
        workersPeakRssMiB: fleet.childrenPeakRssMiB(),
      };
    },
  };
}

/** A big-run side's window, with the worker's side of its workflow tasks (the SDK's metrics). */
async function openBigWindow(
  ctx: Ctx,
  fleet: Fleet,
): Promise<{ close(n: number): Promise<Window & { workflowTasks: WorkerSideOfWfts }> }> {
  const sdk0 = await scrape(ctx.metricsAddress);
  const window = openWindow(ctx, fleet);
  return {
    async close(n) {
      const measured = window.close(n);
      return { ...measured, workflowTasks: workerSideOfWfts(sdk0, await scrape(ctx.metricsAddress)) };
    },
  };
}

/** Runfleet's tasks/s against both baselines of a part, and the three sides as the JSON keeps them (ratios to 3 decimals). */
function sides<T extends { tasksPerSec: number }>(runfleet: T, baseline: T, spawn: T) {
  const ratio = runfleet.tasksPerSec / baseline.tasksPerSec;
  const ratioVsSpawn = runfleet.tasksPerSec / spawn.tasksPerSec;
  const round3 = (x: number) => Math.round(x * 1000) / 1000;
  return {
    ratio,
    ratioVsSpawn,
    json: { ratio: round3(ratio), ratioVsSpawn: round3(ratioVsSpawn), runfleet, baseline, spawn },
  };
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    tasks: 10_000,
    runs: 1_000,
    stored: 10_000,
    k: 2,
    slots: 50,
    cache: 500,
    concurrency: 50,
    samples: 50,
    timeoutMs: 900_000,
    quick: false,
    store: 'stopped',
  };
  const set = new Set<string>();
  const int = (flag: string, v: string | undefined, min: number): number => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < min)
      throw new Error(`${flag} takes an integer >= ${min}, got ${JSON.stringify(v)}`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = (argv[i] as string).split('=', 2) as [string, string | undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    set.add(flag);
    switch (flag) {
      case '--tasks':
        args.tasks = int(flag, value(), 1);
        break;
      case '--runs':
        args.runs = int(flag, value(), 1);
        break;
      case '--stored':
        args.stored = int(flag, value(), 1);
        break;
      case '--k':
        args.k = int(flag, value(), 1);
        break;
      case '--slots':
        args.slots = int(flag, value(), 1);
        break;
      case '--cache':
        args.cache = int(flag, value(), 1);
        break;
      case '--concurrency':
        args.concurrency = int(flag, value(), 1);
        break;
      case '--samples':
        args.samples = int(flag, value(), 1);
        break;
      case '--timeout':
        args.timeoutMs = int(flag, value(), 1) * 1000;
        break;
      case '--store': {
        const v = value();
        if (v !== 'stopped' && v !== 'executed')
          throw new Error(`--store takes stopped or executed, got ${JSON.stringify(v)}`);
        args.store = v;
        break;
      }
      case '--quick':
        args.quick = true;
        break;
      case '-h':
      case '--help':
        console.log(
          'usage: tsx bench/runs.ts [--quick] [--tasks 10000] [--runs 1000] [--stored 10000] [--k 2] [--slots 50] ' +
            '[--cache 500] [--concurrency 50] [--samples 50] [--timeout 900] [--store stopped|executed]',
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (args.quick) {
    // Explicit sizes win over --quick's.
    if (!set.has('--tasks')) args.tasks = 2_000;
    if (!set.has('--runs')) args.runs = 200;
    if (!set.has('--stored')) args.stored = 2_000;
  }
  if (args.tasks > 10_000) throw new Error('--tasks: a Runfleet run has at most 10000 tasks (LIMITS.maxTasks)');
  return args;
}

const loadavg = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

interface Spread {
  count: number;
  p50: number;
  p95: number;
  max: number;
}
function spread(values: number[]): Spread {
  return {
    count: values.length,
    p50: round1(percentile(values, 50)),
    p95: round1(percentile(values, 95)),
    max: round1(Math.max(...values)),
  };
}

/** Rejects when any worker of the side stops on its own, or after the timeout. */
function guard(workersDone: Promise<void>[], timeoutMs: number, what: string): { race: Promise<never>; clear(): void } {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  const stopped = workersDone.map((d) =>
    d.then(
      () => Promise.reject(new Error(`${what}: a worker stopped before the end`)),
      (err: unknown) => Promise.reject(err),
    ),
  );
  const race = Promise.race([timeout, ...stopped]);
  race.catch(() => undefined);
  return { race, clear: () => clearTimeout(timer) };
}

interface RunfleetSide {
  fleet: Fleet;
  rf: RunfleetClient;
  controlQueue: string;
  pool: string;
}

/** Runfleet's control worker here and K `runfleet runner serve` processes (S slots each). */
async function startRunfleetSide(ctx: Ctx, k = ctx.args.k): Promise<RunfleetSide> {
  // The control worker's default workflow cache is 500, as `runfleet worker` has it.
  const { fleet, controlQueue, pool } = await startRunfleetFleet({
    address: ctx.address,
    runfleetBundle: ctx.runfleetBundle,
    k,
    slots: ctx.args.slots,
    maxCachedWorkflows: ctx.args.cache,
  });
  return { fleet, rf: ctx.rf(controlQueue), controlQueue, pool };
}

interface BaselineSide {
  fleet: Fleet;
  workflowQueue: string;
  activityQueue: string;
}

/** A bare workflow worker here and K `bench/baseline-worker.ts` processes (concurrency S each). */
async function startBaselineSide(ctx: Ctx): Promise<BaselineSide> {
  // The same workflow cache as Runfleet's control worker.
  const { fleet, workflowQueue, activityQueue } = await startBaselineFleet({
    address: ctx.address,
    baselineBundle: ctx.baselineBundle,
    idPrefix: 'bl',
    k: ctx.args.k,
    concurrency: ctx.args.slots,
    maxCachedWorkflows: ctx.args.cache,
  });
  return { fleet, workflowQueue, activityQueue };
}

interface Chain {
  executions: number;
  /** Oldest first. */
  runIds: string[];
  maxHistory: number;
  histories: number[];
  /**
   * The first execution's workflow tasks (scheduled -> started: queue wait; started -> completed:
   * processing) and each activity type's scheduled -> started, ms: where a task's turn goes.
   */
  firstExecution: {
    workflowTasks: number;
    wftQueueWaitMs: { p50: number; p95: number };
    wftProcessingMs: { p50: number; p95: number };
    scheduleToStartMs: Record<string, { p50: number; p95: number }>;
  };
}

/**
 * The executions of one workflow id (the first and every continue-as-new) from visibility, with
 * their history lengths. Waits until visibility shows none running (it lags the result a bit).
 */
async function chainOf(client: Client, workflowId: string): Promise<Chain> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const rows: { runId: string; status: string; historyLength: number; start: number }[] = [];
    for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      rows.push({
        runId: w.runId,
        status: w.status.name,
        historyLength: w.historyLength,
        start: w.startTime.getTime(),
      });
    }
    if ((rows.length === 0 || rows.some((r) => r.status === 'RUNNING')) && Date.now() < deadline) {
      await sleep(250);
      continue;
    }
    // Visibility lists the newest first: oldest first here, in chain order.
    rows.sort((x, y) => x.start - y.start);
    const histories: number[] = [];
    for (const r of rows) {
      let len = r.historyLength;
      if (!(len > 0)) {
        // Not in this visibility record: count the events.
        const h = await client.workflow.getHandle(workflowId, r.runId).fetchHistory();
        len = h.events?.length ?? 0;
      }
      histories.push(len);
    }
    const first = await historyStats(client.workflow.getHandle(workflowId, rows[0]?.runId), 1);
    const pick = (x: { p50: number; p95: number }) => ({ p50: x.p50, p95: x.p95 });
    return {
      executions: rows.length,
      runIds: rows.map((r) => r.runId),
      maxHistory: Math.max(0, ...histories),
      histories,
      firstExecution: {
        workflowTasks: first.workflowTasks.processingMs.count,
        wftQueueWaitMs: pick(first.workflowTasks.queueWaitMs),
        wftProcessingMs: pick(first.workflowTasks.processingMs),
        scheduleToStartMs: Object.fromEntries(
          Object.entries(first.activities).map(([type, a]) => [type, pick(a.scheduleToStartMs)]),
        ),
      },
    };
  }
}

/** Runfleet, the no-op baseline, or the spawn baseline. */
type Side = 'runfleet' | 'baseline' | 'spawn';
const baselineSide = (activity: BaselineActivity): Side => (activity === 'spawn' ? 'spawn' : 'baseline');

interface BigSide extends Chain {
  side: Side;
  tasks: number;
  wallMs: number;
  tasksPerSec: number;
  peakRssMiB: number;
  workersPeakRssMiB: number;
  /** CPU by process class over the side's window (start call to result). */
  cpu: CpuBreakdown;
  /** The workflow worker's side of its workflow tasks over the window (the SDK's metrics). */
  workflowTasks: WorkerSideOfWfts;
  /** The workflow code's CPU, the side's chain replayed here after the window (bench/replay.ts). */
  replayed: ReplayCpu;
}

/**
 * Where a workflow task's time goes on the worker's side, means over a side's window: the SDK's
 * execution of the task (activations in the sandbox, ms) and its completion call to the server
 * (`RespondWorkflowTaskCompleted`, ms: the server persisting the task's commands), with counts.
 */
interface WorkerSideOfWfts {
  execution: { count: number; mean: number };
  respondCompleted: { count: number; mean: number };
}

function workerSideOfWfts(before: Samples, after: Samples): WorkerSideOfWfts {
  return {
    execution: histogramMean(before, after, 'temporal_workflow_task_execution_latency'),
    respondCompleted: histogramMean(before, after, 'temporal_request_latency', {
      operation: 'RespondWorkflowTaskCompleted',
    }),
  };
}

async function bigRunfleet(ctx: Ctx): Promise<BigSide> {
  const n = ctx.args.tasks;
  const side = await startRunfleetSide(ctx);
  try {
    const spec = {
      name: `bench-big-${n}`,
      group: '/bench/big',
      tasks: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, steps: ['true'], pool: side.pool })),
    };
    const g = guard(side.fleet.done, ctx.args.timeoutMs, `runfleet run of ${n} tasks`);
    const window = await openBigWindow(ctx, side.fleet);
    const run = await side.rf.submitRun(spec);
    const handle = ctx.client.workflow.getHandle(run.workflowId);
    let state: RunState;
    try {
      state = (await Promise.race([handle.result(), g.race])) as RunState;
    } catch (err) {
      await handle.terminate('benchmark error').catch(() => undefined);
      throw err;
    } finally {
      g.clear();
    }
    const measured = await window.close(n);
    const tasks = Object.values(state.tasks);
    const bad = tasks.filter((t) => t.status !== 'success').length;
    if (state.result !== 'success' || bad > 0 || tasks.length !== n) {
      throw new Error(`runfleet run ended ${state.result} with ${bad} of ${tasks.length} tasks not successful`);
    }
    const chain = await chainOf(ctx.client, run.workflowId);
    // As the control worker runs it: Runfleet's bundle and data converter.
    const replayed = await replayCpu(
      ctx.client,
      run.workflowId,
      chain.runIds,
      { workflowBundle: ctx.runfleetBundle, dataConverter: createDataConverter() },
      n,
    );
    return { side: 'runfleet', tasks: n, ...measured, ...chain, replayed };
  } finally {
    await side.fleet.stop();
  }
}

async function bigBaseline(ctx: Ctx, activity: BaselineActivity): Promise<BigSide> {
  const n = ctx.args.tasks;
  const side = await startBaselineSide(ctx);
  try {
    const input: BaselineWindowInput = {
      n,
      activity,
      activityTaskQueue: side.activityQueue,
      maxPending: BASELINE_MAX_PENDING,
      continueAtEvents: BASELINE_CONTINUE_AT_EVENTS,
    };
    const g = guard(side.fleet.done, ctx.args.timeoutMs, `${baselineSide(activity)} baseline of ${n} activities`);
    const window = await openBigWindow(ctx, side.fleet);
    const handle = await ctx.client.workflow.start('baselineWindowWorkflow', {
      taskQueue: side.workflowQueue,
      workflowId: `bench-baseline-big/${unique('bl')}`,
      args: [input],
    });
    let result: BaselineWindowResult;
    try {
      result = (await Promise.race([handle.result(), g.race])) as BaselineWindowResult;
    } catch (err) {
      await handle.terminate('benchmark error').catch(() => undefined);
      throw err;
    } finally {
      g.clear();
    }
    const measured = await window.close(n);
    if (result.n !== n) throw new Error(`${baselineSide(activity)} baseline completed ${result.n} of ${n} activities`);
    const chain = await chainOf(ctx.client, handle.workflowId);
    if (chain.executions !== result.executions) {
      console.error(
        `bench: baseline chain: visibility lists ${chain.executions}, the workflow counted ${result.executions}`,
      );
    }
    // As the baselines' workflow worker runs it: the SDK's default data converter.
    const replayed = await replayCpu(
      ctx.client,
      handle.workflowId,
      chain.runIds,
      { workflowBundle: ctx.baselineBundle },
      n,
    );
    return { side: baselineSide(activity), tasks: n, ...measured, ...chain, replayed };
  } finally {
    await side.fleet.stop();
  }
}

/**
 * Calls `fn(i)` for i in 0..count-1, at most `limit` at once; resolves when all have, rejects on
 * the first failure (the others still in flight finish on their own).
 */
async function bounded(count: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) {
      const i = next++;
      await fn(i);
    }
  });
  await Promise.all(lanes);
}

interface ManySide {
  side: Side;
  runs: number;
  wallMs: number;
  tasksPerSec: number;
  /** Start call to result, per run. */
  latencyMs: Spread;
  /** The start calls alone. */
  startCallMs: Spread;
  peakRssMiB: number;
  workersPeakRssMiB: number;
  /**
   * What one run's history holds, the mean over `PER_RUN_SAMPLE` runs spread evenly over all of
   * them (the first ones alone would be the cold start: a run's control worker knows no runner
   * key yet, docs/runners.md): workflow tasks
   * completed, search-attribute upserts (the SDK's own for patches included), activities
   * scheduled, markers (local activities, patches), events.
   */
  perRun: { workflowTasks: number; upserts: number; activities: number; markers: number; events: number };
  /** CPU by process class over the side's window (first start call to last result). */
  cpu: CpuBreakdown;
}

/** Runs whose histories are read for `perRun`. */
const PER_RUN_SAMPLE = 20;

/**
 * R workflows started with at most `concurrency` start calls in flight; each one's result is
 * awaited from its start on, so all R run at once. Latency: start call to result.
 */
async function many(
  ctx: Ctx,
  side: ManySide['side'],
  fleet: Fleet,
  start: (i: number) => Promise<WorkflowHandle>,
  check: (result: unknown) => void,
): Promise<ManySide> {
  const r = ctx.args.runs;
  const latencies: number[] = [];
  const startCalls: number[] = [];
  const results: Promise<void>[] = [];
  const started: WorkflowHandle[] = [];
  const g = guard(fleet.done, ctx.args.timeoutMs, `${r} ${side} runs`);
  const window = openWindow(ctx, fleet);
  try {
    const starting = bounded(r, ctx.args.concurrency, async (i) => {
      const s0 = Date.now();
      const handle = await start(i);
      startCalls.push(Date.now() - s0);
      started.push(handle);
      const p = handle.result().then((res) => {
        check(res);
        latencies.push(Date.now() - s0);
      });
      p.catch(() => undefined);
      results.push(p);
    });
    await Promise.race([starting, g.race]);
    await Promise.race([Promise.all(results), g.race]);
  } catch (err) {
    await Promise.all(started.map((h) => h.terminate('benchmark error').catch(() => undefined)));
    throw err;
  } finally {
    g.clear();
  }
  const measured = window.close(r);
  const every = Math.max(1, Math.floor(started.length / PER_RUN_SAMPLE));
  const sample = await Promise.all(
    started
      .filter((_, i) => i % every === 0)
      .slice(0, PER_RUN_SAMPLE)
      .map((h) => historyStats(h, 1)),
  );
  const mean = (type: string) =>
    round1(sample.reduce((sum, st) => sum + (st.eventTypesPerTask[type] ?? 0), 0) / Math.max(1, sample.length));
  return {
    side,
    runs: r,
    perRun: {
      workflowTasks: mean('workflowTaskCompleted'),
      upserts: mean('upsertWorkflowSearchAttributes'),
      activities: mean('activityTaskScheduled'),
      markers: mean('markerRecorded'),
      events: round1(sample.reduce((sum, st) => sum + st.events, 0) / Math.max(1, sample.length)),
    },
    ...measured,
    latencyMs: spread(latencies),
    startCallMs: spread(startCalls),
  };
}

/**
 * CPU-seconds per 1,000 tasks by process class, each side's total against the spawn baseline's
 * (the last column); a side that read no task process shows 0 there.
 */
function cpuTable(rows: readonly { side: Side; cpu: CpuBreakdown }[]): string {
  const spawn = rows.find((r) => r.side === 'spawn')?.cpu.per1000Tasks.total ?? NaN;
  return formatTable(
    ['side', 'dev server', 'workflow worker', 'runners / activity workers', 'task processes', 'total', 'total / spawn'],
    rows.map(({ side, cpu: { per1000Tasks: c } }) => [
      side,
      c.devServer.toFixed(2),
      c.workflowWorker.toFixed(2),
      c.workers.toFixed(2),
      c.tasks.toFixed(2),
      c.total.toFixed(2),
      (c.total / spawn).toFixed(2),
    ]),
  );
}

const expectSuccess = (res: unknown): void => {
  const state = res as RunState;
  if (state.result !== 'success') throw new Error(`run ${state.id} ended ${state.result}`);
};

async function manyRunfleet(ctx: Ctx): Promise<ManySide> {
  const side = await startRunfleetSide(ctx);
  try {
    // Under the stored group tree: part 3 counts these runs.
    const group = `${STORED_GROUP}/concurrent`;
    return await many(
      ctx,
      'runfleet',
      side.fleet,
      async (i) => {
        const run = await side.rf.submitRun({
          name: `small-${i}`,
          group,
          tasks: [{ name: 't', steps: ['true'], pool: side.pool }],
        });
        return ctx.client.workflow.getHandle(run.workflowId);
      },
      expectSuccess,
    );
  } finally {
    await side.fleet.stop();
  }
}

async function manyBaseline(ctx: Ctx, activity: BaselineActivity): Promise<ManySide> {
  const side = await startBaselineSide(ctx);
  const id = unique('bls');
  try {
    return await many(
      ctx,
      baselineSide(activity),
      side.fleet,
      (i) =>
        ctx.client.workflow.start('baselineWorkflow', {
          taskQueue: side.workflowQueue,
          workflowId: `bench-baseline-small/${id}-${i}`,
          args: [{ n: 1, activityTaskQueue: side.activityQueue, activity } satisfies BaselineInput],
        }),
      (res) => {
        if ((res as BaselineResult).activityStartsMs.length !== 1) throw new Error('a baseline run ran no activity');
      },
    );
  } finally {
    await side.fleet.stop();
  }
}

interface ListingResult {
  stored: number;
  /** Runs already under the group (part 2's) when storing began. */
  reused: number;
  /** Runs submitted to reach `stored`, every tenth failing. */
  added: number;
  /** How the added runs were made (`--store`). */
  mode: Args['store'];
  /** Added runs that failed (`executed`: every tenth). */
  failedRuns: number;
  /** The result the filtered calls ask for: about a tenth of the stored runs have it. */
  filterResult: 'success' | 'failed';
  storeMs: number;
  /** Storing to all of them visible (counted, none running) in visibility. */
  visibleAfterMs: number;
  queries: { name: string; spread: Spread; rows: number }[];
}

async function listing(ctx: Ctx, reused: number): Promise<ListingResult> {
  const total = ctx.args.stored;
  const added = Math.max(0, total - reused);
  let failedRuns = 0;
  const executed = ctx.args.store === 'executed';
  // About a tenth of the runs: part 2's successes among stopped runs, or the failed tenth.
  const filterResult = executed ? 'failed' : 'success';
  // Stopped runs need no runner: the control worker alone.
  const side = await startRunfleetSide(ctx, executed ? ctx.args.k : 0);
  const t0 = Date.now();
  let storeMs: number;
  try {
    const g = guard(side.fleet.done, ctx.args.timeoutMs, `storing ${added} runs`);
    try {
      await Promise.race([
        bounded(added, STORE_CONCURRENCY, async (i) => {
          const group = `${STORED_GROUP}/g${i % 10}`;
          if (!executed) {
            // A real run workflow, stopped from its first workflow task on: it records its search
            // attributes, skips its task and ends (phase cancelled, result stopped).
            const handle = await ctx.client.workflow.signalWithStart('runWorkflow', {
              taskQueue: side.controlQueue,
              workflowId: runWorkflowId(group, unique('st')),
              args: [
                {
                  spec: { name: `stored-${i}`, group, tasks: [{ name: 't', steps: ['true'], pool: side.pool }] },
                },
              ],
              signal: stopRunSignal,
              signalArgs: [{ reason: 'bench: stored', by: 'bench' }],
            });
            const state = (await handle.result()) as RunState;
            if (state.result !== 'stopped') throw new Error(`stored run ${handle.workflowId} ended ${state.result}`);
            return;
          }
          const fail = i % 10 === 9;
          if (fail) failedRuns++;
          const run = await side.rf.submitRun({
            name: `stored-${i}`,
            group,
            tasks: [{ name: 't', steps: [fail ? 'false' : 'true'], pool: side.pool }],
          });
          const state = (await ctx.client.workflow.getHandle(run.workflowId).result()) as RunState;
          if (state.result !== (fail ? 'failed' : 'success')) {
            throw new Error(`stored run ${run.workflowId} ended ${state.result}`);
          }
        }),
        g.race,
      ]);
    } finally {
      g.clear();
    }
    storeMs = Date.now() - t0;
  } finally {
    await side.fleet.stop();
  }

  // Visibility lags the results: wait until every run is counted and none shows as running.
  const rf = side.rf;
  const running = `WorkflowType = 'runWorkflow' AND RunfleetGroupPath = '${STORED_GROUP}' AND ExecutionStatus = 'Running'`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const [count, stillRunning] = await Promise.all([
      rf.countRuns({ group: STORED_GROUP }),
      ctx.client.workflow.count(running).then((c) => c.count),
    ]);
    if (count >= total && stillRunning === 0) break;
    if (Date.now() > deadline) {
      throw new Error(`visibility: ${count} of ${total} stored runs counted, ${stillRunning} running, after 60 s`);
    }
    await sleep(250);
  }
  const visibleAfterMs = Date.now() - t0;

  const n = ctx.args.samples;
  const measure = async (name: string, call: () => Promise<number>) => {
    const times: number[] = [];
    let rows = 0;
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      rows = await call();
      times.push(performance.now() - s);
    }
    return { name, spread: spread(times), rows };
  };
  const page: ListRunsFilter = { group: STORED_GROUP, limit: 50 };
  const queries: ListingResult['queries'] = [];
  queries.push(await measure('listRunsPage first page', async () => (await rf.listRunsPage(page)).runs.length));
  // Deeper pages: pages 2, 3, ... through the token (wrapping to page 2 again at the end).
  let token: string | null = null;
  queries.push(
    await measure('listRunsPage next page (token)', async () => {
      if (token === null) token = (await rf.listRunsPage(page)).nextPageToken;
      if (token === null) return 0;
      const got = await rf.listRunsPage({ ...page, pageToken: token });
      token = got.nextPageToken;
      return got.runs.length;
    }),
  );
  queries.push(
    await measure(
      `listRunsPage result=${filterResult}`,
      async () => (await rf.listRunsPage({ ...page, result: filterResult })).runs.length,
    ),
  );
  queries.push(await measure('countRuns group', () => rf.countRuns({ group: STORED_GROUP })));
  queries.push(
    await measure(`countRuns result=${filterResult}`, () =>
      rf.countRuns({ group: STORED_GROUP, result: filterResult }),
    ),
  );
  return {
    stored: total,
    reused,
    added,
    mode: ctx.args.store,
    failedRuns,
    filterResult,
    storeMs,
    visibleAfterMs,
    queries,
  };
}

const secs = (ms: number): string => (ms / 1000).toFixed(1);

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const loadBefore = loadavg();
  const began = Date.now();
  const metricsAddress = await freeMetricsAddress();
  installBenchRuntime({ metricsAddress });
  const rss = new RssSampler();
  rss.start();

  try {
    await withBenchServer(
      async ({ binary, address, serverPids, client, runfleetBundle, baselineBundle }) => {
        const ctx: Ctx = {
          address,
          serverPids,
          metricsAddress,
          client,
          rf: (controlTaskQueue) => RunfleetClient.fromClient(client, { controlTaskQueue, address }),
          runfleetBundle,
          baselineBundle,
          rss,
          args,
        };
        console.error(
          `bench: tasks ${args.tasks}, runs ${args.runs}, stored ${args.stored}, K=${args.k} S=${args.slots}, cache ${args.cache}, ` +
            `start concurrency ${args.concurrency}; load average ${loadBefore}`,
        );

        // 1. The big run; the baseline first (part 2 goes the other way round).
        console.error(`bench: 1. big run of ${args.tasks} tasks: baseline`);
        const bigBase = await bigBaseline(ctx, 'noop');
        console.error(
          `  baseline: ${secs(bigBase.wallMs)} s, ${bigBase.tasksPerSec} tasks/s, ${bigBase.executions} executions`,
        );
        console.error(`bench: 1. big run of ${args.tasks} tasks: runfleet`);
        const bigRf = await bigRunfleet(ctx);
        console.error(
          `  runfleet: ${secs(bigRf.wallMs)} s, ${bigRf.tasksPerSec} tasks/s, ${bigRf.executions} executions`,
        );
        console.error(`bench: 1. big run of ${args.tasks} tasks: spawn baseline`);
        const bigSpawn = await bigBaseline(ctx, 'spawn');
        console.error(
          `  spawn: ${secs(bigSpawn.wallMs)} s, ${bigSpawn.tasksPerSec} tasks/s, ${bigSpawn.executions} executions`,
        );

        // 2. Concurrent small runs.
        console.error(`bench: 2. ${args.runs} concurrent runs: runfleet`);
        const manyRf = await manyRunfleet(ctx);
        console.error(`  runfleet: ${secs(manyRf.wallMs)} s, ${manyRf.tasksPerSec} tasks/s`);
        console.error(`bench: 2. ${args.runs} concurrent runs: spawn baseline`);
        const manySpawn = await manyBaseline(ctx, 'spawn');
        console.error(`  spawn: ${secs(manySpawn.wallMs)} s, ${manySpawn.tasksPerSec} tasks/s`);
        console.error(`bench: 2. ${args.runs} concurrent runs: baseline`);
        const manyBase = await manyBaseline(ctx, 'noop');
        console.error(`  baseline: ${secs(manyBase.wallMs)} s, ${manyBase.tasksPerSec} tasks/s`);

        // 3. Listing, part 2's runs reused.
        console.error(
          `bench: 3. storing ${args.stored} finished runs under ${STORED_GROUP} (${args.runs} from part 2)`,
        );
        const list = await listing(ctx, Math.min(args.runs, args.stored));
        console.error(`  stored in ${secs(list.storeMs)} s, all visible after ${secs(list.visibleAfterMs)} s`);
        rss.stop();
        const loadAfter = loadavg();
        const totalMs = Date.now() - began;

        const { ratio: bigRatio, ratioVsSpawn: bigVsSpawn } = sides(bigRf, bigBase, bigSpawn);
        const { ratio: manyRatio, ratioVsSpawn: manyVsSpawn } = sides(manyRf, manyBase, manySpawn);
        const head = `${os.cpus().length} cores, node ${process.version}, temporal dev server in memory, K=${args.k} S=${args.slots}, cache ${args.cache}`;
        console.log('');
        console.log(stateFilesystemLine());
        console.log(`1. One run of ${args.tasks} tasks (\`true\`) vs bare Temporal (${head})`);
        console.log(
          formatTable(
            ['side', 'tasks', 'wall s', 'tasks/s', 'executions', 'max history', 'peak RSS MiB bench / workers'],
            [bigRf, bigBase, bigSpawn].map((r) => [
              r.side,
              String(r.tasks),
              secs(r.wallMs),
              r.tasksPerSec.toFixed(1),
              String(r.executions),
              String(r.maxHistory),
              `${r.peakRssMiB} / ${r.workersPeakRssMiB}`,
            ]),
          ),
        );
        console.log(
          `ratio (runfleet / no-op baseline tasks/s): ${bigRatio.toFixed(2)}; vs the spawn baseline: ${bigVsSpawn.toFixed(2)}`,
        );
        console.log(
          `Histories per execution, oldest first: runfleet ${bigRf.histories.join(', ')}; baseline ${bigBase.histories.join(', ')}; ` +
            `spawn ${bigSpawn.histories.join(', ')} ` +
            `(warning threshold ${HISTORY_WARNING}). The baseline keeps <= ${BASELINE_MAX_PENDING} activities pending and ` +
            `continues as new once its history reaches ${BASELINE_CONTINUE_AT_EVENTS} events and the pending ones completed.`,
        );
        console.log('CPU-seconds per 1,000 tasks (bench/README.md says what each class reads):');
        console.log(cpuTable([bigRf, bigBase, bigSpawn]));
        console.log('First execution of each side, ms p50/p95 (where a task waits for its turn):');
        for (const r of [bigRf, bigBase, bigSpawn]) {
          const f = r.firstExecution;
          const activities = Object.entries(f.scheduleToStartMs)
            .map(([type, x]) => `${type} ${x.p50}/${x.p95}`)
            .join(', ');
          console.log(
            `  ${r.side}: ${f.workflowTasks} workflow tasks, queue wait ${f.wftQueueWaitMs.p50}/${f.wftQueueWaitMs.p95}, ` +
              `processing ${f.wftProcessingMs.p50}/${f.wftProcessingMs.p95}; scheduled -> started: ${activities}`,
          );
        }
        console.log(
          "The worker's side of the workflow tasks over each whole side, means (the SDK's metrics): its execution of a task; its completion call (RespondWorkflowTaskCompleted: the server persisting it):",
        );
        for (const r of [bigRf, bigBase, bigSpawn]) {
          const w = r.workflowTasks;
          console.log(
            `  ${r.side}: execution ${w.execution.mean} ms (${w.execution.count} tasks), ` +
              `completion call ${w.respondCompleted.mean} ms (${w.respondCompleted.count} calls)`,
          );
        }
        console.log(
          "The workflow code alone: each side's chain replayed here after its window (bench/replay.ts), the cheapest of 3 rounds:",
        );
        for (const r of [bigRf, bigBase, bigSpawn]) {
          const x = r.replayed;
          console.log(
            `  ${r.side}: ${x.cpuMsPer1000} CPU ms per 1,000 tasks (${(x.cpuMsPer1000 / bigSpawn.replayed.cpuMsPer1000).toFixed(2)}x spawn), ` +
              `${x.executions} executions in ${x.wallMs} ms`,
          );
        }
        console.log('');
        console.log(
          `2. ${args.runs} concurrent runs of 1 task (\`true\`) vs ${args.runs} bare workflows of 1 activity (no-op; spawn) ` +
            `(<= ${args.concurrency} start calls in flight)`,
        );
        console.log(
          formatTable(
            [
              'side',
              'runs',
              'wall s',
              'tasks/s',
              'latency p50/p95 ms',
              'start call p50/p95 ms',
              'per run: WFTs / upserts / activities / markers / events',
              'peak RSS MiB bench / workers',
            ],
            [manyRf, manyBase, manySpawn].map((r) => [
              r.side,
              String(r.runs),
              secs(r.wallMs),
              r.tasksPerSec.toFixed(1),
              `${r.latencyMs.p50}/${r.latencyMs.p95}`,
              `${r.startCallMs.p50}/${r.startCallMs.p95}`,
              `${r.perRun.workflowTasks} / ${r.perRun.upserts} / ${r.perRun.activities} / ${r.perRun.markers} / ${r.perRun.events}`,
              `${r.peakRssMiB} / ${r.workersPeakRssMiB}`,
            ]),
          ),
        );
        console.log(
          `ratio (runfleet / no-op baseline tasks/s): ${manyRatio.toFixed(2)}; vs the spawn baseline: ${manyVsSpawn.toFixed(2)}`,
        );
        console.log('CPU-seconds per 1,000 runs (one task each):');
        console.log(cpuTable([manyRf, manyBase, manySpawn]));
        console.log('');
        console.log(
          `3. Listing with ${list.stored} finished runs under ${STORED_GROUP} (${list.reused} from part 2, ${list.added} added ` +
            `in ${secs(list.storeMs)} s = ${round1((list.added * 1000) / list.storeMs)} runs/s, ` +
            (list.mode === 'stopped'
              ? 'each stopped by a signal-with-start before dispatching'
              : `each running its task, ${list.failedRuns} failing`) +
            `; all visible after ${secs(list.visibleAfterMs)} s); ${args.samples} sequential calls each`,
        );
        console.log(
          formatTable(
            ['call', 'p50 ms', 'p95 ms', 'max ms', 'rows / count'],
            list.queries.map((q) => [
              q.name,
              q.spread.p50.toFixed(1),
              q.spread.p95.toFixed(1),
              q.spread.max.toFixed(1),
              String(q.rows),
            ]),
          ),
        );
        console.log('');
        console.log('Summary');
        console.log(
          `  big run (${args.tasks} tasks): runfleet ${bigRf.tasksPerSec} vs baseline ${bigBase.tasksPerSec} tasks/s, ` +
            `ratio ${bigRatio.toFixed(2)} (vs spawn ${bigSpawn.tasksPerSec}: ${bigVsSpawn.toFixed(2)}); ` +
            `executions ${bigRf.executions} / ${bigBase.executions}, ` +
            `max history ${bigRf.maxHistory} / ${bigBase.maxHistory} (< ${HISTORY_WARNING}: ` +
            `${Math.max(bigRf.maxHistory, bigBase.maxHistory) < HISTORY_WARNING ? 'yes' : 'NO'})`,
        );
        console.log(
          `  ${args.runs} concurrent runs: runfleet ${manyRf.tasksPerSec} vs baseline ${manyBase.tasksPerSec} tasks/s, ` +
            `ratio ${manyRatio.toFixed(2)} (vs spawn ${manySpawn.tasksPerSec}: ${manyVsSpawn.toFixed(2)}); ` +
            `latency p50/p95 ${manyRf.latencyMs.p50}/${manyRf.latencyMs.p95} vs ` +
            `${manyBase.latencyMs.p50}/${manyBase.latencyMs.p95} ms (spawn ${manySpawn.latencyMs.p50}/${manySpawn.latencyMs.p95})`,
        );
        const q = (name: string) => list.queries.find((x) => x.name === name)?.spread;
        console.log(
          `  listing (${list.stored} stored): first page p50/p95 ${q('listRunsPage first page')?.p50}/${q('listRunsPage first page')?.p95} ms, ` +
            `next page ${q('listRunsPage next page (token)')?.p50}/${q('listRunsPage next page (token)')?.p95} ms, ` +
            `countRuns ${q('countRuns group')?.p50}/${q('countRuns group')?.p95} ms; storing took ${secs(list.storeMs)} s`,
        );
        console.log(`  load average (1/5/15 min) before ${loadBefore}, after ${loadAfter}; total ${secs(totalMs)} s`);

        const file = resultsFile('runs');
        const report = {
          finishedAt: new Date().toISOString(),
          machine: machineInfo(),
          temporalBinary: binary,
          args,
          loadAverage: { before: loadBefore, after: loadAfter },
          totalMs,
          topology: 'workflow worker in the bench process; each runner / activity worker its own process',
          peakRssMiB: mib(rss.peakBytes),
          bigRun: {
            ...sides(bigRf, bigBase, bigSpawn).json,
            baselineMaxPending: BASELINE_MAX_PENDING,
            baselineContinueAtEvents: BASELINE_CONTINUE_AT_EVENTS,
          },
          concurrentRuns: sides(manyRf, manyBase, manySpawn).json,
          listing: { group: STORED_GROUP, storeConcurrency: STORE_CONCURRENCY, ...list },
        };
        writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
        console.log(`Results written to ${file}`);
      },
      { removeTempDirsAtEnd: true },
    );
  } finally {
    rss.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('bench failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
