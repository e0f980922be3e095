/**
 * The cost of an idle fleet and of losing a runner (issue 3's benchmark), against the obvious
 * bare-Temporal liveness design measured in the same invocation. See bench/README.md.
 *
 *   npx tsx bench/runners.ts                        # --fleets 20,100 --minutes 2 --rounds 3
 *   npx tsx bench/runners.ts --fleets 20 --minutes 1 --rounds 1
 *
 * Targets (issue 3): a lost runner is detected within 30 s; an idle runner costs at most 4
 * workflow tasks a minute.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { RunnerAdmin } from '../src/client/runners';
import { runWorkflowId, runnerWorkflowId } from '../src/ids';
import type { RunState } from '../src/types';
import { stateQuery } from '../workflows/run-messages';
import { until } from '../test/helpers/until';
import { BenchChild } from './children';
import type { LivenessInput } from './liveness-workflows';
import { formatTable, percentile } from './stats';
import {
  NAMESPACE,
  PROJECT_ROOT,
  BENCH_OPERATOR,
  RUNFLEET_BIN,
  childEnv,
  machineInfo,
  resultsFile,
  round1,
  sleep,
  tempDir,
  terminateRunners,
  unique,
  withBenchServer,
} from './topology';

const RUNNER_HOST = join(__dirname, 'runner-host.ts');
/** A runner process or a host of many takes seconds to start; 100 agents on 2 cores, longer. */
const READY_TIMEOUT_MS = 240_000;
/** The baseline's ping period: a timer and an activity every 30 s per runner. */
const BASELINE_PING_MS = 30_000;
/** Registry calls in flight at once while creating a fleet (each is an update-with-start). */
const CREATE_CONCURRENCY = 10;
/** How long a lost-detection round may wait for each step before it fails. */
const LOST_STEP_TIMEOUT_MS = 150_000;
const WFT_COMPLETED = temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED;

interface Args {
  fleets: number[];
  minutes: number;
  rounds: number;
  /** Settings.slots of every runner created here. */
  slots: number;
  /** Fleets up to this size run one `runfleet runner serve` process per runner; larger ones in hosts. */
  processesUpTo: number;
  /** Runner agents (or bare ping workers) per host process. */
  perHost: number;
  /** Wait after all runners are ready before the window opens (registration and first sessions settle). */
  settleS: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { fleets: [20, 100], minutes: 2, rounds: 3, slots: 2, processesUpTo: 20, perHost: 25, settleS: 10 };
  const int = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${flag} takes a whole number >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const v = argv[++i];
    switch (flag) {
      case '--fleets':
        a.fleets = (v ?? '').split(',').map((x) => int('--fleets', x, 1));
        break;
      case '--minutes':
        // Whole half-minutes: the baseline pings every 30 s, so every runner has the same count in the window.
        a.minutes = Number(v);
        if (!(a.minutes > 0) || !Number.isInteger(a.minutes * 2)) throw new Error('--minutes: a multiple of 0.5');
        break;
      case '--rounds':
        a.rounds = int(flag, v, 1);
        break;
      case '--slots':
        a.slots = int(flag, v, 1);
        break;
      case '--processes-up-to':
        a.processesUpTo = int(flag, v, 0);
        break;
      case '--per-host':
        a.perHost = int(flag, v, 1);
        break;
      case '--settle':
        a.settleS = int(flag, v, 0);
        break;
      default:
        throw new Error(
          `unknown argument ${flag} (--fleets 20,100 --minutes 2 --rounds 3 --slots 2 --processes-up-to 20 --per-host 25 --settle 10)`,
        );
    }
  }
  return a;
}

// --- processes ----------------------------------------------------------------------------------

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds of a process so far (/proc/<pid>/stat), null once it is gone. */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "pid (comm) ": state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

const sumCpu = (children: BenchChild[]): number => children.reduce((s, c) => s + (cpuSeconds(c.pid) ?? 0), 0);

function tsxChild(name: string, args: string[], address: string, logDir: string, logName: string): BenchChild {
  return new BenchChild({
    name,
    command: process.execPath,
    args: ['--require', require.resolve('tsx/cjs'), RUNNER_HOST, ...args],
    env: childEnv(address),
    cwd: PROJECT_ROOT,
    logFile: join(logDir, `${logName}.log`),
  });
}

function serveChild(o: { address: string; name: string; dir: string; token?: string }): BenchChild {
  return new BenchChild({
    name: `runner ${o.name}`,
    command: process.execPath,
    args: [RUNFLEET_BIN, 'runner', 'serve', '--name', o.name, '--state-dir', join(o.dir, o.name)],
    env: { ...childEnv(o.address), ...(o.token ? { RUNFLEET_RUNNER_TOKEN: o.token } : {}) },
    // Not the project directory: no runfleet.yaml or data keys are picked up.
    cwd: o.dir,
    logFile: join(o.dir, `${o.name}.log`),
  });
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return out;
}

/** Workflow tasks completed and events appended in [t0, t1] in the workflow's (current run's) history. */
async function historyWindow(client: Client, workflowId: string, t0: number, t1: number) {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  let events = 0;
  let wft = 0;
  for (const e of history.events ?? []) {
    const at = tsToMs(e.eventTime);
    if (at < t0 || at > t1) continue;
    events++;
    if (e.eventType === WFT_COMPLETED) wft++;
  }
  return { events, wft };
}

// --- idle fleets --------------------------------------------------------------------------------

interface SideFigures {
  side: 'runfleet' | 'baseline';
  topology: string;
  /** Workflow tasks completed per runner per minute in the window (mean, and the busiest runner). */
  wftPerRunnerMin: number;
  wftPerRunnerMinMax: number;
  /** CPU seconds per minute of the control worker (Runfleet) / the liveness workflow worker (baseline). */
  workerCpuSPerMin: number;
  /** Events appended to the side's runner workflows in the window, per minute (all runners). */
  eventsPerMin: number;
  /** CPU seconds per minute of the side's runner processes (all of them). */
  runnersCpuSPerMin: number;
}

interface IdleResult {
  fleet: number;
  windowS: number;
  runfleet: SideFigures;
  baseline: SideFigures;
  ratios: { wft: number; workerCpu: number; events: number };
}

async function idleFleet(o: {
  client: Client;
  admin: RunnerAdmin;
  address: string;
  args: Args;
  f: number;
  id: string;
  control: BenchChild;
  liveness: BenchChild;
  livenessQueue: string;
}): Promise<IdleResult> {
  const { client, admin, address, args, f } = o;
  const tag = `${o.id}-f${f}`;
  const dir = tempDir();
  const pool = `bench-idle-${tag}`;
  const names = Array.from({ length: f }, (_, i) => `${tag}-r${i}`);
  const queues = Array.from({ length: f }, (_, i) => `bench-ping-${tag}-q${i}`);
  const livenessIds = queues.map((q) => `liveness/${q}`);
  const runnerProcs: BenchChild[] = [];
  const pingProcs: BenchChild[] = [];
  try {
    // Runfleet: F runners created in the registry, then served.
    const tokens = await mapLimit(names, CREATE_CONCURRENCY, async (name) => {
      const issued = await admin.create({ name, pool, settings: { slots: args.slots }, by: 'bench' });
      return issued.token;
    });
    const asProcesses = f <= args.processesUpTo;
    const hosts = chunks(
      names.map((name, i) => ({ name, pool, token: tokens[i] as string, stateDir: join(dir, name) })),
      args.perHost,
    );
    if (asProcesses) {
      for (const [i, name] of names.entries())
        runnerProcs.push(serveChild({ address, name, dir, token: tokens[i] as string }));
    } else {
      for (const [i, agents] of hosts.entries()) {
        const spec = join(dir, `agents-${i}.json`);
        writeFileSync(spec, JSON.stringify({ address, namespace: NAMESPACE, agents }), { mode: 0o600 });
        runnerProcs.push(tsxChild(`runner host ${i}`, ['agents', '--spec', spec], address, dir, `agents-${i}`));
      }
    }
    // Baseline: F bare workers (one per queue) in hosts, and F liveness workflows.
    for (const [i, qs] of chunks(queues, args.perHost).entries()) {
      const spec = join(dir, `ping-${i}.json`);
      writeFileSync(spec, JSON.stringify({ address, namespace: NAMESPACE, queues: qs }));
      pingProcs.push(tsxChild(`ping host ${i}`, ['ping-workers', '--spec', spec], address, dir, `ping-${i}`));
    }
    const runnerTopology = asProcesses
      ? `${f} runfleet runner serve processes`
      : `${runnerProcs.length} host processes x <= ${args.perHost} RunnerAgents`;
    const pingTopology = `${pingProcs.length} host process(es) x <= ${args.perHost} bare workers`;
    console.error(`bench: F=${f}: starting ${runnerTopology}; baseline ${pingTopology}`);
    await Promise.all([
      ...runnerProcs.map((c) => c.waitForOutput(asProcesses ? /serving pool/ : /runner-host ready/, READY_TIMEOUT_MS)),
      ...pingProcs.map((c) => c.waitForOutput(/runner-host ready/, READY_TIMEOUT_MS)),
    ]);
    await mapLimit(queues, CREATE_CONCURRENCY, (queue, i) =>
      client.workflow.start('livenessWorkflow', {
        taskQueue: o.livenessQueue,
        workflowId: livenessIds[i] as string,
        args: [{ queue, everyMs: BASELINE_PING_MS } satisfies LivenessInput],
      }),
    );
    // Every runner ready as the registry sees it (its session taken).
    await until(
      `F=${f}: all runners ready in the registry`,
      async () => {
        const records = await mapLimit(names, CREATE_CONCURRENCY, (n) => admin.get(n));
        return records.every((r) => r.status === 'ready');
      },
      { timeoutMs: READY_TIMEOUT_MS, everyMs: 250 },
    );
    console.error(`bench: F=${f}: all ready; settling ${args.settleS} s, then measuring ${args.minutes} min`);
    await sleep(args.settleS * 1000);

    const windowMs = args.minutes * 60_000;
    const procs = [o.control, o.liveness, ...runnerProcs, ...pingProcs];
    for (const c of procs) if (!c.running) throw new Error(`${c.name} exited before the window\n${c.tail()}`);
    const cpu0 = { control: cpuSeconds(o.control.pid), liveness: cpuSeconds(o.liveness.pid) };
    const runners0 = { rf: sumCpu(runnerProcs), base: sumCpu(pingProcs) };
    const t0 = Date.now();
    await sleep(windowMs);
    const t1 = Date.now();
    const cpu1 = { control: cpuSeconds(o.control.pid), liveness: cpuSeconds(o.liveness.pid) };
    const runners1 = { rf: sumCpu(runnerProcs), base: sumCpu(pingProcs) };
    for (const c of procs) if (!c.running) throw new Error(`${c.name} exited during the window\n${c.tail()}`);
    const minutes = (t1 - t0) / 60_000;

    const rf = await mapLimit(names, CREATE_CONCURRENCY, (n) => historyWindow(client, runnerWorkflowId(n), t0, t1));
    const base = await mapLimit(livenessIds, CREATE_CONCURRENCY, (id) => historyWindow(client, id, t0, t1));
    const side = (
      name: SideFigures['side'],
      topology: string,
      h: { events: number; wft: number }[],
      cpuA: number | null,
      cpuB: number | null,
      rcpu: number,
    ): SideFigures => ({
      side: name,
      topology,
      wftPerRunnerMin: round2(h.reduce((s, x) => s + x.wft, 0) / f / minutes),
      wftPerRunnerMinMax: round2(Math.max(...h.map((x) => x.wft)) / minutes),
      workerCpuSPerMin: round2(((cpuB ?? NaN) - (cpuA ?? NaN)) / minutes),
      eventsPerMin: round1(h.reduce((s, x) => s + x.events, 0) / minutes),
      runnersCpuSPerMin: round2(rcpu / minutes),
    });
    const runfleet = side('runfleet', runnerTopology, rf, cpu0.control, cpu1.control, runners1.rf - runners0.rf);
    const baseline = side('baseline', pingTopology, base, cpu0.liveness, cpu1.liveness, runners1.base - runners0.base);
    const ratio = (a: number, b: number) => (b === 0 ? (a === 0 ? 1 : Infinity) : round2(a / b));
    const result: IdleResult = {
      fleet: f,
      windowS: round1((t1 - t0) / 1000),
      runfleet,
      baseline,
      ratios: {
        wft: ratio(runfleet.wftPerRunnerMin, baseline.wftPerRunnerMin),
        workerCpu: ratio(runfleet.workerCpuSPerMin, baseline.workerCpuSPerMin),
        events: ratio(runfleet.eventsPerMin, baseline.eventsPerMin),
      },
    };
    console.error(`bench: F=${f}: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await Promise.all([...runnerProcs, ...pingProcs].map((c) => c.stop()));
    await terminateRunners(client, names);
    await Promise.all(
      livenessIds.map((id) =>
        client.workflow
          .getHandle(id)
          .terminate('bench over')
          .catch(() => undefined),
      ),
    );
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

// --- lost detection -----------------------------------------------------------------------------

interface LostRound {
  round: number;
  runner: string;
  /** ms from the kill -9 to the task `lost` in the run's state. */
  taskLostMs: number;
  /** ms from the kill to the registry record `idle`, then `lost`. */
  runnerIdleMs: number;
  runnerLostMs: number;
  /** ms from the restart of the runner process to the task's reported outcome in the run. */
  outcomeAfterRestartMs: number;
  outcome: { status: string; exitCode: number | null; reason: string | null };
}

/**
 * One round: a registered `runfleet runner serve` process (default settings) takes a task, is
 * killed with SIGKILL mid-task, and is restarted once the registry calls it lost. The run uses
 * its default heartbeat timeout (10 s).
 */
async function lostRound(o: {
  client: Client;
  admin: RunnerAdmin;
  address: string;
  controlQueue: string;
  id: string;
  round: number;
  delayMs: number;
}): Promise<LostRound> {
  const { client, admin, address } = o;
  await sleep(o.delayMs);
  const dir = tempDir();
  const name = `${o.id}-lost${o.round}`;
  const pool = `bench-lost-${o.id}-${o.round}`;
  const marker = join(dir, 'started');
  let proc: BenchChild | undefined;
  let handleId: string | undefined;
  try {
    const { token } = await admin.create({ name, pool, settings: { slots: 1 }, by: 'bench' });
    proc = serveChild({ address, name, dir, token });
    await proc.waitForOutput(/serving pool/, READY_TIMEOUT_MS);
    handleId = runWorkflowId('/bench/runners', name);
    const handle = await client.workflow.start('runWorkflow', {
      taskQueue: o.controlQueue,
      workflowId: handleId,
      // The task outlives the kill and ends while its runner is away; it reports on its return.
      args: [
        {
          spec: {
            name: 'lost',
            group: '/bench/runners',
            tasks: [{ name: 'work', steps: [`echo > ${marker}`, 'sleep 20'], pool }],
          },
        },
      ],
    });
    await until(`round ${o.round}: the task started`, () => existsSync(marker), {
      timeoutMs: LOST_STEP_TIMEOUT_MS,
      everyMs: 250,
    });
    proc.killNow();
    const killedAt = Date.now();
    await proc.exited;
    const task = async () => (await handle.query(stateQuery)).tasks.work;
    let taskLostAt = 0;
    let idleAt = 0;
    const lostAt = await until(
      `round ${o.round}: the runner lost`,
      async () => {
        const [t, record] = await Promise.all([task(), admin.get(name)]);
        const now = Date.now();
        if (!taskLostAt && t?.status === 'lost') taskLostAt = now;
        if (!idleAt && (record.status === 'idle' || record.status === 'lost')) idleAt = now;
        return record.status === 'lost' ? now : null;
      },
      { timeoutMs: LOST_STEP_TIMEOUT_MS, everyMs: 250 },
    );
    if (!taskLostAt)
      taskLostAt = await until(
        `round ${o.round}: the task lost`,
        async () => ((await task())?.status === 'lost' ? Date.now() : null),
        { timeoutMs: LOST_STEP_TIMEOUT_MS, everyMs: 250 },
      );
    proc = serveChild({ address, name, dir });
    const restartedAt = Date.now();
    const done = await until(
      `round ${o.round}: the task's outcome`,
      async () => {
        const t = await task();
        return t && t.status !== 'lost' && t.status !== 'running' && t.status !== 'reserved'
          ? { t, at: Date.now() }
          : null;
      },
      { timeoutMs: LOST_STEP_TIMEOUT_MS, everyMs: 250 },
    );
    const final: RunState = await client.withDeadline(Date.now() + 60_000, () => handle.result());
    if (final.tasks.work?.status !== 'success')
      throw new Error(`round ${o.round}: the task ended ${final.tasks.work?.status}: ${final.tasks.work?.reason}`);
    return {
      round: o.round,
      runner: name,
      taskLostMs: taskLostAt - killedAt,
      runnerIdleMs: idleAt - killedAt,
      runnerLostMs: lostAt - killedAt,
      outcomeAfterRestartMs: done.at - restartedAt,
      outcome: { status: done.t.status, exitCode: done.t.exitCode, reason: done.t.reason },
    };
  } finally {
    await proc?.stop();
    await terminateRunners(client, [name]);
    if (handleId)
      await client.workflow
        .getHandle(handleId)
        .terminate('bench over')
        .catch(() => undefined);
  }
}

// --- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const startedAt = Date.now();
  await withBenchServer(
    async ({ client, address }) => {
      const id = unique('rn');
      const controlQueue = `bench-control-${id}`;
      const livenessQueue = `bench-liveness-${id}`;
      const dir = tempDir();
      const admin = new RunnerAdmin(client, {
        controlTaskQueue: controlQueue,
        address,
        operatorKey: BENCH_OPERATOR.seed,
      });
      // Runfleet's control worker and the baseline's workflow worker, each its own process (CPU from /proc).
      const control = new BenchChild({
        name: 'control worker',
        command: process.execPath,
        args: [RUNFLEET_BIN, 'worker'],
        env: { ...childEnv(address), RUNFLEET_CONTROL_TASK_QUEUE: controlQueue },
        cwd: dir,
        logFile: join(dir, 'control.log'),
      });
      const liveness = tsxChild(
        'liveness workflow worker',
        ['liveness-worker', '--address', address, '--namespace', NAMESPACE, '--task-queue', livenessQueue],
        address,
        dir,
        'liveness',
      );
      await Promise.all([
        control.waitForOutput(/control worker serving/, READY_TIMEOUT_MS),
        liveness.waitForOutput(/runner-host ready/, READY_TIMEOUT_MS),
      ]);

      const idle: IdleResult[] = [];
      for (const f of args.fleets) {
        idle.push(await idleFleet({ client, admin, address, args, f, id, control, liveness, livenessQueue }));
      }

      console.error(`bench: lost detection, ${args.rounds} round(s) at once, 5 s apart`);
      const rounds = await Promise.all(
        Array.from({ length: args.rounds }, (_, r) =>
          lostRound({ client, admin, address, controlQueue, id, round: r + 1, delayMs: r * 5_000 }),
        ),
      );
      const spread = (xs: number[]) => ({ p50: percentile(xs, 50), max: Math.max(...xs) });
      const lost = {
        rounds,
        taskLostMs: spread(rounds.map((r) => r.taskLostMs)),
        runnerIdleMs: spread(rounds.map((r) => r.runnerIdleMs)),
        runnerLostMs: spread(rounds.map((r) => r.runnerLostMs)),
        outcomeAfterRestartMs: spread(rounds.map((r) => r.outcomeAfterRestartMs)),
      };
      print(args, idle, lost);
      const file = resultsFile('runners');
      writeFileSync(
        file,
        JSON.stringify(
          { machine: machineInfo(), args, durationS: round1((Date.now() - startedAt) / 1000), idle, lost },
          null,
          2,
        ),
      );
      console.log(`Results written to ${file}`);
      await Promise.all([control.stop(), liveness.stop()]);
    },
    { removeTempDirsAtEnd: true },
  );
  console.error(`bench: done in ${round1((Date.now() - startedAt) / 1000)} s`);
}

function print(
  args: Args,
  idle: IdleResult[],
  lost: Record<'taskLostMs' | 'runnerIdleMs' | 'runnerLostMs' | 'outcomeAfterRestartMs', { p50: number; max: number }>,
): void {
  const rows: string[][] = [];
  for (const r of idle) {
    for (const s of [r.runfleet, r.baseline]) {
      rows.push([
        String(r.fleet),
        s.side,
        `${s.wftPerRunnerMin}${s.side === 'runfleet' && s.wftPerRunnerMinMax > 4 ? ' *' : ''}`,
        String(s.wftPerRunnerMinMax),
        String(s.workerCpuSPerMin),
        String(s.eventsPerMin),
        String(s.runnersCpuSPerMin),
        s.topology,
      ]);
    }
    rows.push([
      String(r.fleet),
      'ratio rf/base',
      String(r.ratios.wft),
      '',
      String(r.ratios.workerCpu),
      String(r.ratios.events),
      '',
      '',
    ]);
  }
  console.log(
    `Idle fleet: ${args.minutes} min window after all runners are ready (+${args.settleS} s), both sides at once`,
  );
  console.log(
    formatTable(
      ['F', 'side', 'WFT/runner/min', 'max', 'worker CPU s/min', 'events/min', 'runner procs CPU s/min', 'topology'],
      rows,
    ),
  );
  console.log(
    'Target: an idle runner costs at most 4 workflow tasks a minute (* marks a miss, on the busiest runner).\n' +
      "worker CPU: Runfleet's control worker (`runfleet worker`) / the baseline's workflow worker, each its own process.\n" +
      `Baseline: per runner a workflow that runs a ping activity on the runner's queue every ${BASELINE_PING_MS / 1000} s.`,
  );
  console.log('');
  const s = (x: { p50: number; max: number }) => `${round1(x.p50 / 1000)} / ${round1(x.max / 1000)}`;
  const miss = (x: { max: number }) => (x.max > 30_000 ? ' *' : '');
  console.log(`Lost runner (kill -9 mid-task, default settings, ${args.rounds} rounds), seconds p50 / max`);
  console.log(
    formatTable(
      ['measure', 'p50 / max s'],
      [
        ['kill -> task lost (run state)', s(lost.taskLostMs) + miss(lost.taskLostMs)],
        ['kill -> runner idle (registry)', s(lost.runnerIdleMs) + miss(lost.runnerIdleMs)],
        ['kill -> runner lost (registry)', s(lost.runnerLostMs)],
        ['restart -> task outcome reported', s(lost.outcomeAfterRestartMs)],
      ],
    ),
  );
  console.log('Target: lost detected within 30 s (* marks a miss on the max).');
}

main().catch((err: unknown) => {
  console.error('bench failed:', err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
