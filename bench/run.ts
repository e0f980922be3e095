/**
 * Dispatch benchmark: Runfleet's scheduler against a bare Temporal baseline, on one headless
 * in-memory dev server started by this process.
 *
 *   npm run bench                       # N in {100, 1000}, K in {1, 4}, S = 25
 *   npx tsx bench/run.ts --n 100 --k 1  # one quick combination
 *
 * Options: --n 100,1000  --k 1,4  --slots 25  --warmup 20 (0: none)  --timeout 600 (s per run)
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
 * start on the worker. Results: a table on stdout and `.bench/dispatch-<timestamp>.json`.
 * A measurement, not a test: exits 0 whatever the ratio, non-zero only on errors.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import {
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  bundleWorkflowCode,
  makeTelemetryFilterString,
} from '@temporalio/worker';
import { dataConverter } from '../src/codec/compression';
import { runWorkflowId } from '../src/ids';
import { ensureTemporalBinary } from '../src/server/temporal-binary';
import { startDevServer, type DevServer } from '../src/server/dev-server';
import type { RunState } from '../src/types';
import { createControlWorker } from '../workers/control';
import type { BaselineActivity, BaselineInput, BaselineResult } from './baseline-workflows';
import { BenchChild, liveChildren, stopAllChildren } from './children';
import { historyStats, type HistoryStats } from './history';
import { RssSampler, formatTable, mean, mib, percentile } from './stats';

const PROJECT_ROOT = resolve(__dirname, '..');
const NAMESPACE = 'default';
const TARGET_RATIO = 0.8;
/** Workers poll right after `run()`; give both sides the same moment to get their polls in. */
const SETTLE_MS = 500;
/** How long a worker process may take to start (node, tsx, connect, first polls). */
const READY_TIMEOUT_MS = 120_000;
const RUNFLEET_BIN = join(PROJECT_ROOT, 'bin', 'runfleet');
const BASELINE_WORKER = join(__dirname, 'baseline-worker.ts');

interface Args {
  ns: number[];
  ks: number[];
  slots: number;
  warmup: number;
  timeoutMs: number;
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
}

interface Ctx {
  address: string;
  client: Client;
  runfleetBundle: { code: string };
  baselineBundle: { code: string };
  rss: RssSampler;
  timeoutMs: number;
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (message: string) => console.error(message),
};

function parseArgs(argv: string[]): Args {
  const args: Args = { ns: [100, 1000], ks: [1, 4], slots: 25, warmup: 20, timeoutMs: 600_000 };
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
      case '-h':
      case '--help':
        console.log('usage: tsx bench/run.ts [--n 100,1000] [--k 1,4] [--slots 25] [--warmup 20] [--timeout 600]');
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (args.ns.some((n) => n > 1000)) throw new Error('--n: a Runfleet run has at most 1000 tasks (LIMITS.maxTasks)');
  return args;
}

const unique = (prefix: string): string => `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round1 = (x: number): number => Math.round(x * 10) / 10;

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

/** Everything started for one side of one combination; stopped in reverse order. */
class Fleet {
  private readonly stops: (() => Promise<void>)[] = [];
  readonly done: Promise<void>[] = [];
  readonly children: BenchChild[] = [];

  constructor(private readonly address: string) {}

  async connection(): Promise<NativeConnection> {
    const c = await NativeConnection.connect({ address: this.address });
    this.stops.push(() => c.close());
    return c;
  }

  addWorker(worker: Worker): void {
    const done = worker.run();
    this.done.push(done);
    this.stops.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done.catch(() => undefined);
    });
  }

  /**
   * Starts K worker processes (all at once) and waits until each is ready; they are stopped
   * together (SIGTERM, SIGKILL after 5 s). An early exit of any fails the run.
   */
  async addChildren(
    k: number,
    start: (i: number) => BenchChild,
    ready: (child: BenchChild) => Promise<void>,
  ): Promise<void> {
    const started: BenchChild[] = [];
    this.stops.push(async () => {
      await Promise.all(started.map((c) => c.stop()));
    });
    for (let i = 0; i < k; i++) {
      const child = start(i);
      started.push(child);
      this.children.push(child);
      this.done.push(child.unexpectedExit());
    }
    await Promise.all(started.map(ready));
  }

  /** Each worker process's peak RSS (read now, while they run) and their sum, in MiB. */
  childrenRss(): { total: number; each: SideResult['children'] } {
    const each = this.children.map((c) => ({ name: c.name, pid: c.pid, bytes: c.peakRssBytes() }));
    return {
      total: mib(each.reduce((a, c) => a + c.bytes, 0)),
      each: each.map((c) => ({ name: c.name, pid: c.pid, peakRssMiB: mib(c.bytes) })),
    };
  }

  onStop(fn: () => Promise<void> | void): void {
    this.stops.push(async () => fn());
  }

  async stop(): Promise<void> {
    const errors: unknown[] = [];
    for (const s of this.stops.reverse()) {
      try {
        await s();
      } catch (err) {
        errors.push(err);
      }
    }
    this.stops.length = 0;
    if (errors.length > 0) throw errors[0];
  }
}

async function runRunfleet(ctx: Ctx, n: number, k: number, s: number): Promise<SideResult> {
  const id = unique('rf');
  const controlQueue = `bench-control-${id}`;
  const pool = `bench-${id}`;
  const dataDir = tempDir();
  const fleet = new Fleet(ctx.address);
  fleet.onStop(() => removeTempDir(dataDir));
  try {
    const control = await createControlWorker({
      connection: await fleet.connection(),
      namespace: NAMESPACE,
      taskQueue: controlQueue,
      workflowBundle: ctx.runfleetBundle,
      maxCachedWorkflows: 10,
    });
    fleet.addWorker(control);
    // K runners as in production: `runfleet runner serve`, each its own process and connection,
    // ready once its /readyz answers 200 and it has logged "serving pool".
    await fleet.addChildren(
      k,
      (i) => {
        const name = `${id}-r${i}`;
        return new BenchChild({
          name: `runner ${name}`,
          command: process.execPath,
          args: [
            RUNFLEET_BIN,
            'runner',
            'serve',
            '--pool',
            pool,
            '--name',
            name,
            '--slots',
            String(s),
            '--data-dir',
            join(dataDir, name),
            '--health-port',
            '0',
          ],
          env: childEnv(ctx.address),
          // Not the project directory: no runfleet.yaml is picked up.
          cwd: dataDir,
          logFile: join(dataDir, `${name}.log`),
        });
      },
      async (child) => {
        const m = await child.waitForOutput(/health: (http:\/\/127\.0\.0\.1:\d+)\/livez/, READY_TIMEOUT_MS);
        await waitReadyz(child, `${m[1] as string}/readyz`, READY_TIMEOUT_MS);
        await child.waitForOutput(/serving pool/, READY_TIMEOUT_MS);
      },
    );
    await sleep(SETTLE_MS);

    const spec = {
      name: `bench-${n}x${k}x${s}`,
      group: '/bench',
      tasks: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, steps: ['true'], pool })),
    };
    ctx.rss.resetWindow();
    const t0 = Date.now();
    const handle = await ctx.client.workflow.start('runWorkflow', {
      taskQueue: controlQueue,
      workflowId: runWorkflowId('/bench', id),
      args: [{ spec }],
    });
    const state = await awaitResult<RunState>(handle, fleet.done, ctx.timeoutMs);
    const wallMs = Date.now() - t0;
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
    };
  } finally {
    await fleet.stop();
  }
}

/** A bare Temporal baseline: `activity` 'noop' (side `baseline`) or 'spawn' (side `spawn`). */
async function runBaseline(ctx: Ctx, activity: BaselineActivity, n: number, k: number, s: number): Promise<SideResult> {
  const id = unique(activity === 'spawn' ? 'bs' : 'bl');
  const workflowQueue = `bench-baseline-wf-${id}`;
  const activityQueue = `bench-baseline-act-${id}`;
  const logDir = tempDir();
  const fleet = new Fleet(ctx.address);
  fleet.onStop(() => removeTempDir(logDir));
  try {
    fleet.addWorker(
      await Worker.create({
        connection: await fleet.connection(),
        namespace: NAMESPACE,
        taskQueue: workflowQueue,
        workflowBundle: ctx.baselineBundle,
        maxCachedWorkflows: 10,
      }),
    );
    // K activity workers, each its own process and connection (bench/baseline-worker.ts),
    // ready once it has printed its ready line.
    await fleet.addChildren(
      k,
      (i) =>
        new BenchChild({
          name: `baseline worker ${id}-w${i}`,
          command: process.execPath,
          args: [
            '--require',
            require.resolve('tsx/cjs'),
            BASELINE_WORKER,
            '--task-queue',
            activityQueue,
            '--concurrency',
            String(s),
            '--address',
            ctx.address,
            '--namespace',
            NAMESPACE,
            '--identity',
            `${id}-w${i}`,
            '--exit-with-stdin',
          ],
          env: childEnv(ctx.address),
          cwd: PROJECT_ROOT,
          logFile: join(logDir, `w${i}.log`),
        }),
      async (child) => {
        await child.waitForOutput(/^baseline-worker ready:/m, READY_TIMEOUT_MS);
      },
    );
    await sleep(SETTLE_MS);

    const input: BaselineInput = { n, activityTaskQueue: activityQueue, activity };
    ctx.rss.resetWindow();
    const t0 = Date.now();
    const handle = await ctx.client.workflow.start('baselineWorkflow', {
      taskQueue: workflowQueue,
      workflowId: `bench-baseline/${id}`,
      args: [input],
    });
    const result = await awaitResult<BaselineResult>(handle, fleet.done, ctx.timeoutMs);
    const wallMs = Date.now() - t0;
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
    };
  } finally {
    await fleet.stop();
  }
}

/** Temporary directories (runner data, worker logs) not yet removed: also removed on Ctrl-C. */
const tempDirs = new Set<string>();
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'runfleet-bench-'));
  tempDirs.add(dir);
  return dir;
}
function removeTempDir(dir: string): void {
  tempDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * A worker process's environment: this one's, minus Runfleet's and Temporal's own settings, plus
 * the dev server's address.
 */
function childEnv(address: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(RUNFLEET|TEMPORAL)_/.test(name)) env[name] = value;
  }
  env.TEMPORAL_ADDRESS = address;
  env.TEMPORAL_NAMESPACE = NAMESPACE;
  return env;
}

/** Polls a runner's /readyz until it answers 200; fails when the runner exits or after `timeoutMs`. */
async function waitReadyz(child: BenchChild, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    if (!child.running) throw new Error(`${child.name} exited before it was ready\n${child.tail()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      const body = await res.text();
      if (res.status === 200) return;
      last = `${res.status} ${body.trim()}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`${child.name}: ${url} not 200 within ${timeoutMs / 1000} s (${last})`);
    await sleep(50);
  }
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
    `(${r.children.map((c) => c.peakRssMiB).join(' + ')})`
  );
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // The SDK's own logger: WARN and above, minus the "No workflows/activities registered, not
  // polling" notice that every activity-only or workflow-only worker here prints at start.
  // The core (Rust) side: ERROR only, forwarded to that logger. Its WARNs are routine under this
  // load (e.g. "Task not found when completing" for an activity whose workflow already moved on).
  const defaultLog = new DefaultLogger('WARN');
  Runtime.install({
    logger: new DefaultLogger('WARN', (entry) => {
      if (/^No (workflows|activities) registered, not polling/.test(entry.message)) return;
      defaultLog.log(entry.level, entry.message, entry.meta);
    }),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'ERROR', other: 'ERROR' }), forward: {} },
    },
  });
  const rss = new RssSampler();
  rss.start();

  const binary = await ensureTemporalBinary({ projectRoot: PROJECT_ROOT, log: (l) => console.error(l) });
  // eslint-disable-next-line prefer-const -- assigned after the signal handlers that read it
  let server: DevServer | undefined;
  // Handled on every signal, acted on once: under `npx tsx` a Ctrl-C arrives twice (from the
  // terminal and relayed by tsx), and an unhandled second one would kill this process before it
  // has stopped its children and the dev server. The cleanup is bounded (SIGKILL after 5 s).
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.error(`bench: ${sig}, stopping the worker processes and the dev server`);
    void stopAllChildren()
      .then(() => {
        for (const dir of [...tempDirs]) removeTempDir(dir);
        return server?.stop();
      })
      .catch(() => undefined)
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  server = await startDevServer({
    binary,
    headless: true,
    namespace: NAMESPACE,
    log: (l) => {
      if (l.startsWith('dev-server:')) console.error(l);
    },
  });
  let clientConnection: Connection | undefined;
  try {
    clientConnection = await Connection.connect({ address: server.address });
    // Runfleet's data converter, as every Runfleet client has: a large run state (N=1000) comes
    // back gzipped. Plain payloads (the baselines') pass through it unchanged.
    const client = new Client({ connection: clientConnection, namespace: NAMESPACE, dataConverter });

    console.error('bench: bundling workflows');
    const runfleetBundle = await bundleWorkflowCode({
      workflowsPath: join(PROJECT_ROOT, 'workflows', 'index.ts'),
      logger: quietBundlerLogger,
    });
    const baselineBundle = await bundleWorkflowCode({
      workflowsPath: join(__dirname, 'baseline-workflows.ts'),
      logger: quietBundlerLogger,
    });
    const ctx: Ctx = {
      address: server.address,
      client,
      runfleetBundle,
      baselineBundle,
      rss,
      timeoutMs: args.timeoutMs,
    };

    const spawnMs = await shellSpawnCostMs();
    console.error(`bench: a sequential /bin/sh -c true spawn costs ~${spawnMs} ms here`);

    const runSide = (side: Side, n: number, k: number): Promise<SideResult> =>
      side === 'runfleet'
        ? runRunfleet(ctx, n, k, args.slots)
        : runBaseline(ctx, side === 'spawn' ? 'spawn' : 'noop', n, k, args.slots);
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
      `Runfleet dispatch vs bare Temporal (${os.cpus().length} cores, node ${process.version}, temporal dev server in memory)`,
    );
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

    const outDir = join(PROJECT_ROOT, '.bench');
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `dispatch-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    const report = {
      finishedAt: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? null,
        node: process.version,
        platform: process.platform,
      },
      temporalBinary: binary,
      args: { n: args.ns, k: args.ks, slots: args.slots, warmup: args.warmup },
      targetRatio: TARGET_RATIO,
      shellSpawnMs: spawnMs,
      topology: 'workflow worker in the bench process; each runner / activity worker its own process',
      peakRssMiB: mib(rss.peakBytes),
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
  } finally {
    if (liveChildren() > 0) await stopAllChildren();
    await clientConnection?.close().catch(() => undefined);
    await server.stop();
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
