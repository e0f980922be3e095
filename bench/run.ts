/**
 * Dispatch benchmark: Runfleet's scheduler against a bare Temporal baseline, on one headless
 * in-memory dev server started by this process (or, with `--temporal cluster`, on Temporal as a
 * service: four processes on PostgreSQL, src/server/cluster.ts).
 *
 *   npm run bench                       # N in {100, 1000}, K in {1, 4}, S = 25
 *   npx tsx bench/run.ts --n 100 --k 1  # one quick combination
 *
 * Options: --n 100,1000  --k 1,4  --slots 25  --warmup 20 (0: none)  --timeout 600 (s per run)
 *          --temporal dev|cluster
 *
 * For each (N, K, S), three sides, in an order that rotates from one combination to the next,
 * all in the production topology: the workflow worker in this process, every runner / activity
 * worker a process of its own (started for the side, stopped after it: SIGTERM, SIGKILL after 5 s).
 *  - Runfleet: the control worker here and K runners, each `node bin/runfleet runner serve` (S
 *    slots), run one `runWorkflow` of N independent tasks `steps: ['true']` (a real
 *    `/bin/sh -c true` each).
 *  - Baseline: a workflow worker here and K bare activity workers, each
 *    `bench/baseline-worker.ts` (maxConcurrentActivityTaskExecutions = S), run one workflow of N
 *    pure no-op activities (Promise.all).
 *  - Spawn baseline: the same, but each activity spawns `/bin/sh -c true` (detached, stdio
 *    ignored) and awaits its exit: the same per-task process cost as a Runfleet task.
 * `ratio` = Runfleet / baseline tasks/s (the headline, target >= 0.8); `ratio vs spawn` =
 * Runfleet / spawn baseline tasks/s (Runfleet's scheduling overhead alone).
 * Throughput is N / wall time from start to result. Dispatch latency is from "ready" (the
 * workflow's own start time, on the workflow clock, on both sides) to the task's / activity's
 * start on the worker. CPU seconds per 1,000 tasks by process class (dev server, workflow worker =
 * this process, runners / activity workers, task processes) over the same window: a second table.
 * The load average is printed before and after each side and at the start and end. Results: the
 * tables on stdout and `.bench/dispatch-<timestamp>.json`.
 * A measurement, not a test: exits 0 whatever the ratio, non-zero only on errors.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { runWorkflowId } from '../src/ids';
import type { RunState } from '../src/types';
import type { BaselineActivity, BaselineInput, BaselineResult } from './baseline-workflows';
import { installBenchRuntime } from './runtime';
import { historyStats, type HistoryStats } from './history';
import {
  machineInfo,
  resultsFile,
  round1,
  startBaselineFleet,
  startRunfleetFleet,
  stateFilesystemLine,
  withBenchServer,
} from './topology';
import { RssSampler, formatTable, mean, mib, percentile } from './stats';
import { clkTck, cpuDelta, formatLoad, loadAvg, readCpu, type CpuBreakdown, type CpuReading } from './cpu';

const TARGET_RATIO = 0.8;

interface Args {
  ns: number[];
  ks: number[];
  slots: number;
  warmup: number;
  timeoutMs: number;
  /** The dev server (default) or Temporal as a service (src/server/cluster.ts). */
  temporal: 'dev' | 'cluster';
}

type Side = 'runfleet' | 'baseline' | 'spawn';

interface SideResult {
  side: Side;
  n: number;
  k: number;
  s: number;
  wallMs: number;
  tasksPerSec: number;
  /** Ready (workflow start, workflow clock) to task start on the worker. */
  dispatchMs: { p50: number; p95: number; max: number; mean: number };
  /** Client `start()` call to task start (includes the first workflow task). */
  fromClientStartMs: { p50: number; p95: number };
  /**
   * Runfleet: task process time as the runner saw it (spawn of `sh -c true` and bookkeeping).
   * Spawn baseline: activity start to the exit of its `sh -c true`. Absent for the no-op baseline.
   */
  execMs?: { p50: number; p95: number };
  events: number;
  eventsPerTask: number;
  eventTypesPerTask: Record<string, number>;
  workflowTasks: HistoryStats['workflowTasks'];
  activities: HistoryStats['activities'];
  /** This (bench) process, which hosts the workflow worker: peak from workflow start to result. */
  peakRssMiB: number;
  /** The sum of the worker processes' peak RSS (VmHWM, over each one's life, read before the stop). */
  childrenPeakRssMiB: number;
  /** Each worker process: pid and peak RSS. */
  children: { name: string; pid: number; peakRssMiB: number }[];
  /**
   * CPU by process class over the measured window (the one tasks/s uses): seconds, and per 1,000
   * tasks. See bench/cpu.ts and the README.
   */
  cpu: CpuBreakdown;
  /** Activity attempts beyond the first (ActivityTaskStarted events with attempt > 1). */
  activityRetries: number;
  /** os.loadavg() (1, 5, 15 min) before the side's worker processes start and after they stop. */
  load: { before: number[]; after: number[] };
}

interface Ctx {
  address: string;
  /** Temporal's pids (their CPU is read from /proc, with any descendants). */
  serverPids: number[];
  client: Client;
  runfleetBundle: { code: string };
  baselineBundle: { code: string };
  rss: RssSampler;
  timeoutMs: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { ns: [100, 1000], ks: [1, 4], slots: 25, warmup: 20, timeoutMs: 600_000, temporal: 'dev' };
  const list = (flag: string, v: string | undefined): number[] => {
    const out = (v ?? '').split(',').map((x) => Number(x.trim()));
    if (out.length === 0 || out.some((x) => !Number.isInteger(x) || x < 1)) {
      throw new Error(`${flag} takes a comma-separated list of positive integers, got ${JSON.stringify(v)}`);
    }
    return out;
  };
  const int = (flag: string, v: string | undefined, min: number): number => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < min)
      throw new Error(`${flag} takes an integer >= ${min}, got ${JSON.stringify(v)}`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = (argv[i] as string).split('=', 2) as [string, string | undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--n':
        args.ns = list(flag, value());
        break;
      case '--k':
        args.ks = list(flag, value());
        break;
      case '--slots':
        args.slots = int(flag, value(), 1);
        break;
      case '--warmup':
        args.warmup = int(flag, value(), 0);
        break;
      case '--timeout':
        args.timeoutMs = int(flag, value(), 1) * 1000;
        break;
      case '--temporal': {
        const v = value();
        if (v !== 'dev' && v !== 'cluster')
          throw new Error(`--temporal takes dev or cluster, got ${JSON.stringify(v)}`);
        args.temporal = v;
        break;
      }
      case '-h':
      case '--help':
        console.log(
          'usage: tsx bench/run.ts [--n 100,1000] [--k 1,4] [--slots 25] [--warmup 20] [--timeout 600] [--temporal dev|cluster]',
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (args.ns.some((n) => n > 1000)) throw new Error('--n: a Runfleet run has at most 1000 tasks (LIMITS.maxTasks)');
  return args;
}

/**
 * The handle's result, or an error when a worker stops on its own or the run takes too long
 * (the workflow is terminated then, so it does not linger on the server).
 */
async function awaitResult<T>(handle: WorkflowHandle, workersDone: Promise<void>[], timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  const workerStopped = workersDone.map((d) =>
    d.then(
      () => Promise.reject(new Error('a worker stopped before the workflow finished')),
      (err: unknown) => Promise.reject(err),
    ),
  );
  try {
    return (await Promise.race([handle.result(), timeout, ...workerStopped])) as T;
  } catch (err) {
    await handle.terminate('benchmark error').catch(() => undefined);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function runRunfleet(ctx: Ctx, n: number, k: number, s: number): Promise<SideResult> {
  const { fleet, id, controlQueue, pool } = await startRunfleetFleet({
    address: ctx.address,
    runfleetBundle: ctx.runfleetBundle,
    k,
    slots: s,
    maxCachedWorkflows: 10,
  });
  try {
    const spec = {
      name: `bench-${n}x${k}x${s}`,
      group: '/bench',
      tasks: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, steps: ['true'], pool })),
    };
    ctx.rss.resetWindow();
    const cpu0 = readWindowCpu(ctx, fleet.children);
    const t0 = Date.now();
    const handle = await ctx.client.workflow.start('runWorkflow', {
      taskQueue: controlQueue,
      workflowId: runWorkflowId('/bench', id),
      args: [{ spec }],
    });
    const state = await awaitResult<RunState>(handle, fleet.done, ctx.timeoutMs);
    const wallMs = Date.now() - t0;
    const cpu = cpuDelta(cpu0, readWindowCpu(ctx, fleet.children), n);
    const peakRssMiB = mib(ctx.rss.windowPeakBytes);
    const childRss = fleet.childrenRss();

    const tasks = Object.values(state.tasks);
    const bad = Object.entries(state.tasks).filter(([, t]) => t.status !== 'success');
    if (state.result !== 'success' || bad.length > 0 || tasks.length !== n) {
      throw new Error(
        `runfleet run ended ${state.result} with ${bad.length} of ${tasks.length} tasks not successful` +
          (bad[0] ? `; e.g. ${bad[0][0]}: ${bad[0][1].status} ${bad[0][1].reason ?? ''}` : ''),
      );
    }
    const ready = Date.parse(state.startedAt as string);
    const starts = tasks.map((t) => Date.parse(t.startedAt as string));
    const dispatch = starts.map((x) => x - ready);
    const exec = tasks.map((t) => Date.parse(t.finishedAt as string) - Date.parse(t.startedAt as string));
    const fromClient = starts.map((x) => x - t0);
    const hist = await historyStats(handle, n);
    return {
      side: 'runfleet',
      n,
      k,
      s,
      wallMs,
      tasksPerSec: round1((n * 1000) / wallMs),
      dispatchMs: {
        p50: percentile(dispatch, 50),
        p95: percentile(dispatch, 95),
        max: Math.max(...dispatch),
        mean: round1(mean(dispatch)),
      },
      fromClientStartMs: { p50: percentile(fromClient, 50), p95: percentile(fromClient, 95) },
      execMs: { p50: percentile(exec, 50), p95: percentile(exec, 95) },
      events: hist.events,
      eventsPerTask: round1(hist.events / n),
      eventTypesPerTask: hist.eventTypesPerTask,
      workflowTasks: hist.workflowTasks,
      activities: hist.activities,
      peakRssMiB,
      childrenPeakRssMiB: childRss.total,
      children: childRss.each,
      cpu,
      activityRetries: await activityRetries(handle),
      load: { before: [], after: [] },
    };
  } finally {
    await fleet.stop();
  }
}

/** A bare Temporal baseline: `activity` 'noop' (side `baseline`) or 'spawn' (side `spawn`). */
async function runBaseline(ctx: Ctx, activity: BaselineActivity, n: number, k: number, s: number): Promise<SideResult> {
  const { fleet, id, workflowQueue, activityQueue } = await startBaselineFleet({
    address: ctx.address,
    baselineBundle: ctx.baselineBundle,
    idPrefix: activity === 'spawn' ? 'bs' : 'bl',
    k,
    concurrency: s,
    maxCachedWorkflows: 10,
  });
  try {
    const input: BaselineInput = { n, activityTaskQueue: activityQueue, activity };
    ctx.rss.resetWindow();
    const cpu0 = readWindowCpu(ctx, fleet.children);
    const t0 = Date.now();
    const handle = await ctx.client.workflow.start('baselineWorkflow', {
      taskQueue: workflowQueue,
      workflowId: `bench-baseline/${id}`,
      args: [input],
    });
    const result = await awaitResult<BaselineResult>(handle, fleet.done, ctx.timeoutMs);
    const wallMs = Date.now() - t0;
    const cpu = cpuDelta(cpu0, readWindowCpu(ctx, fleet.children), n);
    const peakRssMiB = mib(ctx.rss.windowPeakBytes);
    const childRss = fleet.childrenRss();
    if (result.activityStartsMs.length !== n) {
      throw new Error(`${activity} baseline ran ${result.activityStartsMs.length} of ${n} activities`);
    }
    const dispatch = result.activityStartsMs.map((x) => x - result.startedAtMs);
    const fromClient = result.activityStartsMs.map((x) => x - t0);
    const hist = await historyStats(handle, n);
    const exec = result.execMs;
    return {
      side: activity === 'spawn' ? 'spawn' : 'baseline',
      n,
      k,
      s,
      wallMs,
      tasksPerSec: round1((n * 1000) / wallMs),
      dispatchMs: {
        p50: percentile(dispatch, 50),
        p95: percentile(dispatch, 95),
        max: Math.max(...dispatch),
        mean: round1(mean(dispatch)),
      },
      fromClientStartMs: { p50: percentile(fromClient, 50), p95: percentile(fromClient, 95) },
      ...(exec ? { execMs: { p50: percentile(exec, 50), p95: percentile(exec, 95) } } : {}),
      events: hist.events,
      eventsPerTask: round1(hist.events / n),
      eventTypesPerTask: hist.eventTypesPerTask,
      workflowTasks: hist.workflowTasks,
      activities: hist.activities,
      peakRssMiB,
      childrenPeakRssMiB: childRss.total,
      children: childRss.each,
      cpu,
      activityRetries: await activityRetries(handle),
      load: { before: [], after: [] },
    };
  } finally {
    await fleet.stop();
  }
}

/** One CPU reading of the side's process classes: the dev server, this process, the K workers. */
function readWindowCpu(ctx: Ctx, children: readonly { pid: number }[]): CpuReading {
  return readCpu(
    ctx.serverPids,
    children.map((c) => c.pid),
  );
}

/** Activity attempts beyond the first in the workflow's history (a retried activity's last start). */
async function activityRetries(handle: WorkflowHandle): Promise<number> {
  const history = await handle.fetchHistory();
  let retries = 0;
  for (const e of history.events ?? []) {
    const attempt = e.activityTaskStartedEventAttributes?.attempt;
    if (typeof attempt === 'number' && attempt > 1) retries += attempt - 1;
  }
  return retries;
}

/** Mean time of a sequential `/bin/sh -c true` spawn: the floor of Runfleet's per-task process cost. */
async function shellSpawnCostMs(count = 30): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    await new Promise<void>((res, rej) => {
      const child = spawn('/bin/sh', ['-c', 'true'], { detached: true, stdio: 'ignore' });
      child.once('error', rej);
      child.once('exit', () => res());
    });
  }
  return round1((performance.now() - t0) / count);
}

function describe(r: SideResult): string {
  const w = r.workflowTasks;
  const c = r.cpu;
  const p = c.per1000Tasks;
  const helpers = Math.round(c.eachWorker.reduce((a, w) => a + w.liveDescendants, 0) * 1000) / 1000;
  const acts = Object.entries(r.activities)
    .map(([type, a]) => {
      const timeouts = Object.entries(a.timedOut).map(([k, c]) => `${c} ${k} timeouts`);
      return `${type} sched->start p50/p95 ${a.scheduleToStartMs.p50}/${a.scheduleToStartMs.p95} ms${timeouts.length ? ` (${timeouts.join(', ')})` : ''}`;
    })
    .join('; ');
  return (
    `${r.side.padEnd(8)} N=${r.n} K=${r.k} S=${r.s}: ${r.wallMs} ms, ${r.tasksPerSec} tasks/s, ` +
    `dispatch p50/p95 ${r.dispatchMs.p50}/${r.dispatchMs.p95} ms, ${r.eventsPerTask} events/task` +
    (r.execMs ? `, task exec p50/p95 ${r.execMs.p50}/${r.execMs.p95} ms` : '') +
    `\n      workflow tasks: ${w.processingMs.count} completed, ${w.failed} failed, ${w.timedOut} timed out; ` +
    `processing p50/p95 ${w.processingMs.p50}/${w.processingMs.p95} ms (busy ${Math.round((w.processingMs.total / r.wallMs) * 100)}% of wall), ` +
    `queue wait p50/p95 ${w.queueWaitMs.p50}/${w.queueWaitMs.p95} ms` +
    (Object.keys(w.failureCauses).length ? `\n      workflow task failures: ${JSON.stringify(w.failureCauses)}` : '') +
    `\n      ${acts}` +
    `\n      peak RSS: bench process ${r.peakRssMiB} MiB, ${r.children.length} worker processes ${r.childrenPeakRssMiB} MiB ` +
    `(${r.children.map((c) => c.peakRssMiB).join(' + ')})` +
    `\n      CPU s in the window (per 1,000 tasks): Temporal ${c.seconds.devServer} (${p.devServer}), ` +
    `workflow worker ${c.seconds.workflowWorker} (${p.workflowWorker}), runners / activity workers ${c.seconds.workers} ` +
    `(${p.workers}), task processes ${c.seconds.tasks} (${p.tasks}), total ${c.seconds.total} (${p.total})` +
    (helpers !== 0 ? `; the workers' live helper processes (not counted): ${helpers} s` : '') +
    (r.activityRetries > 0 ? `\n      activity retries: ${r.activityRetries}` : '') +
    `\n      load average before ${formatLoad(r.load.before)}, after ${formatLoad(r.load.after)}`
  );
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  installBenchRuntime();
  const rss = new RssSampler();
  rss.start();
  const loadAtStart = loadAvg();
  console.error(`bench: load average (1, 5, 15 min) at the start: ${formatLoad(loadAtStart)}`);

  try {
    await withBenchServer(
      async ({ binary, address, serverPids, service, client, runfleetBundle, baselineBundle }) => {
        const ctx: Ctx = {
          address,
          serverPids,
          client,
          runfleetBundle,
          baselineBundle,
          rss,
          timeoutMs: args.timeoutMs,
        };

        const spawnMs = await shellSpawnCostMs();
        console.error(`bench: a sequential /bin/sh -c true spawn costs ~${spawnMs} ms here`);

        const runSide = async (side: Side, n: number, k: number): Promise<SideResult> => {
          const before = loadAvg();
          const r =
            side === 'runfleet'
              ? await runRunfleet(ctx, n, k, args.slots)
              : await runBaseline(ctx, side === 'spawn' ? 'spawn' : 'noop', n, k, args.slots);
          r.load = { before, after: loadAvg() };
          return r;
        };
        const SIDES: Side[] = ['baseline', 'spawn', 'runfleet'];

        const k0 = args.ks[0] as number;
        if (args.warmup > 0) {
          console.error(`bench: warm-up (N=${args.warmup}, K=${k0}, S=${args.slots}), not recorded`);
          for (const side of SIDES) console.error('  ' + describe(await runSide(side, args.warmup, k0)));
        }

        const results: { runfleet: SideResult; baseline: SideResult; spawn: SideResult; order: string }[] = [];
        let combo = 0;
        for (const n of args.ns) {
          for (const k of args.ks) {
            // Rotate which side goes first (and last), so none always runs on a "cleaner" server.
            const shift = combo++ % SIDES.length;
            const order = [...SIDES.slice(shift), ...SIDES.slice(0, shift)];
            const got: Partial<Record<Side, SideResult>> = {};
            for (const side of order) {
              const r = await runSide(side, n, k);
              console.error('  ' + describe(r));
              got[side] = r;
            }
            results.push({
              runfleet: got.runfleet as SideResult,
              baseline: got.baseline as SideResult,
              spawn: got.spawn as SideResult,
              order: order.join(','),
            });
          }
        }
        rss.stop();
        const loadAtEnd = loadAvg();

        const rows = results.map(({ runfleet: r, baseline: b, spawn: sp }) => {
          const ratio = r.tasksPerSec / b.tasksPerSec;
          const ratioVsSpawn = r.tasksPerSec / sp.tasksPerSec;
          return [
            String(r.n),
            String(r.k),
            String(r.s),
            r.tasksPerSec.toFixed(1),
            b.tasksPerSec.toFixed(1),
            sp.tasksPerSec.toFixed(1),
            `${ratio.toFixed(2)}${ratio >= TARGET_RATIO ? '' : ' *'}`,
            ratioVsSpawn.toFixed(2),
            `${r.dispatchMs.p50}/${r.dispatchMs.p95}`,
            `${b.dispatchMs.p50}/${b.dispatchMs.p95}`,
            `${sp.dispatchMs.p50}/${sp.dispatchMs.p95}`,
            r.eventsPerTask.toFixed(1),
            b.eventsPerTask.toFixed(1),
            `${Math.max(r.peakRssMiB, b.peakRssMiB, sp.peakRssMiB)} / ${Math.max(r.childrenPeakRssMiB, b.childrenPeakRssMiB, sp.childrenPeakRssMiB)}`,
          ];
        });
        console.log('');
        console.log(
          `Runfleet dispatch vs bare Temporal (${os.cpus().length} cores, node ${process.version}, ${service})`,
        );
        console.log(stateFilesystemLine());
        console.log(
          formatTable(
            [
              'N',
              'K',
              'S',
              'rf tasks/s',
              'base tasks/s',
              'spawn tasks/s',
              'ratio',
              'ratio vs spawn',
              'rf p50/p95 ms',
              'base p50/p95 ms',
              'spawn p50/p95 ms',
              'rf ev/task',
              'base ev/task',
              'peak RSS MiB bench / workers',
            ],
            rows,
          ),
        );
        console.log('');
        console.log(
          `CPU seconds per 1,000 tasks by process class, over each side's measured window (start to result; /proc, ` +
            `CLK_TCK ${clkTck()}, and process.cpuUsage() for this process)`,
        );
        const cpuRows = results.flatMap((x) =>
          [x.baseline, x.spawn, x.runfleet].map((r) => [
            String(r.n),
            String(r.k),
            String(r.s),
            r.side,
            r.cpu.per1000Tasks.devServer.toFixed(2),
            r.cpu.per1000Tasks.workflowWorker.toFixed(2),
            r.cpu.per1000Tasks.workers.toFixed(2),
            r.cpu.per1000Tasks.tasks.toFixed(2),
            r.cpu.per1000Tasks.total.toFixed(2),
            `${r.load.before[0]?.toFixed(2)} / ${r.load.after[0]?.toFixed(2)}`,
          ]),
        );
        console.log(
          formatTable(
            [
              'N',
              'K',
              'S',
              'side',
              'Temporal',
              'workflow worker',
              'runners / activity workers',
              'task processes',
              'total',
              'load 1m before / after',
            ],
            cpuRows,
          ),
        );
        console.log('');
        console.log(`Target: ratio (runfleet / no-op baseline tasks/s) >= ${TARGET_RATIO}; * marks a miss.`);
        console.log(
          `ratio vs spawn: runfleet / spawn baseline tasks/s. Runfleet and the spawn baseline both spawn a real /bin/sh -c true ` +
            `per task (~${spawnMs} ms sequentially here); the no-op baseline's activities do nothing.`,
        );
        console.log(
          "Dispatch latency: from the workflow's own start (workflow clock; all tasks ready at once) to the task starting on a worker.",
        );
        const childrenPeak = Math.max(
          ...results.flatMap((x) => [
            x.runfleet.childrenPeakRssMiB,
            x.baseline.childrenPeakRssMiB,
            x.spawn.childrenPeakRssMiB,
          ]),
        );
        console.log(
          `Peak RSS MiB: bench = this process (dev-server client, workflow workers), ${mib(rss.peakBytes)} overall; ` +
            `workers = the sum over the side's K runner / activity worker processes (VmHWM), ${childrenPeak} at most; ` +
            `per row: the highest of the three sides.`,
        );
        const retried = results.flatMap((x) =>
          [x.baseline, x.spawn, x.runfleet]
            .filter((r) => r.activityRetries > 0)
            .map((r) => `${r.side} N=${r.n} K=${r.k}: ${r.activityRetries}`),
        );
        console.log(
          `Activity retries (attempts beyond the first): ${retried.length > 0 ? retried.join(', ') : 'none'}.`,
        );
        console.log(
          `Load average (1, 5, 15 min): ${formatLoad(loadAtStart)} at the start (before the dev server), ` +
            `${formatLoad(loadAtEnd)} at the end (after the last side).`,
        );

        const file = resultsFile('dispatch');
        const report = {
          finishedAt: new Date().toISOString(),
          machine: machineInfo(),
          temporalBinary: binary,
          temporal: service,
          args: { n: args.ns, k: args.ks, slots: args.slots, warmup: args.warmup },
          targetRatio: TARGET_RATIO,
          shellSpawnMs: spawnMs,
          topology: 'workflow worker in the bench process; each runner / activity worker its own process',
          peakRssMiB: mib(rss.peakBytes),
          clockTicksPerSecond: clkTck(),
          loadAverage: { start: loadAtStart, end: loadAtEnd },
          results: results.map(({ runfleet, baseline, spawn: spawnBaseline, order }) => ({
            n: runfleet.n,
            k: runfleet.k,
            s: runfleet.s,
            order,
            ratio: Math.round((runfleet.tasksPerSec / baseline.tasksPerSec) * 1000) / 1000,
            ratioVsSpawn: Math.round((runfleet.tasksPerSec / spawnBaseline.tasksPerSec) * 1000) / 1000,
            meetsTarget: runfleet.tasksPerSec / baseline.tasksPerSec >= TARGET_RATIO,
            runfleet,
            baseline,
            spawnBaseline,
          })),
        };
        writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
        console.log(`Results written to ${file}`);
      },
      { temporal: args.temporal },
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
