/**
 * A runner process's workers, over one connection.
 *
 * - On its pool's queues for each driver it offers (`pool/<pool>`, `pool/<pool>/<driver>`), and
 *   on its pinned queues (`runner/<name>/reserve[/<driver>]`, runs pinned to it), it answers
 *   reservations, polling only while it has a free slot (the activity slot supplier of those
 *   workers is the runner's SlotPool, shared between them).
 * - On its own queue (`runner/<name>`) it executes the tasks on its leases, serves log reads, and
 *   (when registered) its registry session and pings.
 *
 * Tasks outlive these workers: each one is recorded in the runner's session store before it
 * starts, and `recover()` finds those an earlier process left and reports their true outcome.
 * A task no execution activity holds (re-attached, or detached from an execution the server gave
 * up on) is killed by the runner itself at its recorded deadline, or once its run no longer wants
 * it (a stop, a cancel, a purge: the run's `state` query, asked every few seconds).
 */
import { Runtime, Worker, type NativeConnection } from '@temporalio/worker';
import { METRICS } from '../src/metrics';
import { taskFields, type LogLine } from '../src/logging';
import type { DataConverter } from '@temporalio/common';
import { join } from 'node:path';
import { createPoolActivities } from '../activities/pool';
import { createRunnerActivities, logMasksSecrets, runFolder, taskOutputs, taskWorkspace } from '../activities/runner';
import { OUTPUT_FILE } from '../src/run/outputs';
import { LogShipper } from '../src/runner/log-shipper';
import { storedLogSize, taskLogPrefix } from '../src/store/task-logs';
import { createSessionActivities, type SessionActivityDeps } from '../activities/session';
import { sweepTaskFiles } from '../src/runner/retention';
import { pinnedTaskQueue, poolTaskQueue, runnerTaskQueue } from '../src/ids';
import { createProcessDriver } from '../src/runner/process-driver';
import type { Driver, SessionRecord } from '../src/runner/driver';
import { SessionStore } from '../src/runner/sessions';
import { backoff } from '../src/backoff';
import { SlotPool, poolSlotSupplier } from '../src/runner/slots';
import { dataConverter as defaultDataConverter } from '../src/codec/compression';
import type { Tracing } from '../src/tracing';
import type { DriverName, RunState, TaskOutcome } from '../src/types';
import { deadlineOf, timeoutNote, unwantedBecause } from '../src/runner/unattended';
import type { RunnerSigner } from '../src/security/runner-signer';
import type { ObjectStore } from '../src/store/object-store';

/** Tells a run the outcome of a task it lost track of (the run's `taskReport` signal). */
export type ReportOutcome = (record: SessionRecord, outcome: TaskOutcome, note: string) => Promise<void>;

export interface RunnerOptions {
  /** Spans of each reservation and task execution, children of their run's (`startTracing`). Default: none. */
  tracing?: Tracing | null;
  connection: NativeConnection;
  namespace: string;
  name: string;
  pool: string;
  slots: number;
  dataDir: string;
  dataConverter?: DataConverter;
  /** Drivers offered (default: process). */
  drivers?: Partial<Record<DriverName, Driver>>;
  /** This process (a new id every start; default: random). */
  bootId?: string;
  /**
   * Signs what this runner tells runs (reservation answers, execution results, lookup answers;
   * `report` signs its own) with its identity signing key. Without it runs refuse them unless
   * the control workers run without enforcement (in-process test runners).
   */
  signer?: RunnerSigner;
  /** Reads a run's large env, sent by reference (the run's `runEnv` query); see activities/runner.ts. */
  fetchRunEnv?: (runId: string) => Promise<Record<string, string>>;
  /** Sends outcomes of tasks found after the server lost track of them. Without it they are only logged. */
  report?: ReportOutcome;
  /**
   * The run's view of its tasks (its `state` query; null when the run is gone), asked for tasks
   * no execution activity holds: one the run no longer wants (stopped, cancelled, failed by a
   * purge, another attempt) is killed. Throws when the run cannot be asked now (asked again
   * later). Without it such tasks only get their deadline.
   */
  runState?: (runId: string) => Promise<Pick<RunState, 'tasks'> | null>;
  /** How often `runState` is asked while tasks run unattended. Default 5 s. */
  unattendedCheckMs?: number;
  /** The registry session activities (a registered runner). */
  session?: Omit<SessionActivityDeps, 'status'>;
  /** Session keys this process runs or reports, shared with the workers of earlier connections. */
  claimed?: Set<string>;
  /** Identity shown in status (registered runners). */
  runnerId?: string;
  version?: string;
  /** A granted lease no task uses in this time is given back (the run's eviction timeout). */
  evictionMs?: number;
  /** After a task, its lease waits this long for the run's next task (the run's lease linger). */
  lingerMs?: number;
  /** Environment variables of this process passed to tasks (an allowlist: never secrets). */
  passEnv?: Record<string, string>;
  /** Time running tasks get to finish when the runner shuts down (the rest keep running, detached). */
  shutdownGraceMs?: number;
  /** Task logs and workspaces of a run are removed this long after their last change. Default 7 days. */
  logRetentionMs?: number;
  /** The object store of task logs, artifacts and caches; `intervalMs` between two log shipments. */
  objectStore?: { store: ObjectStore; intervalMs: number };
  log?: LogLine;
}

export interface Runner {
  readonly name: string;
  readonly slots: SlotPool;
  readonly drivers: DriverName[];
  run(): Promise<void>;
  shutdown(): void;
  /** Serving work: every worker running and the slots taking work. */
  readiness(): { ready: boolean; reason: string };
  /**
   * Starts recovering every recorded task that no worker of this process runs: re-attached and
   * reported when it ends, or reported at once when it ended while the runner was away.
   * Resolves with how many it took on (their outcomes come later: `settled()`).
   */
  recover(): Promise<number>;
  /**
   * Removes what runners that left the fleet (purged, e.g. temporary runners once gone) left in
   * this runner's drivers (containers on a shared engine). Returns how many it removed.
   */
  sweepGone(runners: string[]): Promise<number>;
  /** Resolves when every recovered or detached task has been reported. */
  settled(): Promise<void>;
  status(): import('../workflows/runner-messages').RunnerLiveStatus;
}

/** How often the slot gauge is set. */
const SLOT_GAUGE_MS = 5_000;
/** How often expired task logs and workspaces are looked for. */
const RETENTION_SWEEP_MS = 3_600_000;
/** How often runs are asked whether they still want the tasks that run here unattended. */
const UNATTENDED_CHECK_MS = 5_000;
/** A run that cannot be asked is logged about at most this often. */
const UNATTENDED_LOG_MS = 60_000;

/** Why the runner killed a task no execution activity held. */
type KillCause = { kind: 'deadline' } | { kind: 'unwanted'; why: string };
/** A task no execution activity holds, as the runner watches it. */
interface Unattended {
  record: SessionRecord;
  kill(cause: KillCause): void;
}

/** Variables a task inherits from the runner's environment when nothing else is said. */
export const DEFAULT_PASS_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'USER', 'SHELL', 'TMPDIR'] as const;

export async function createRunner(opts: RunnerOptions): Promise<Runner> {
  const log = opts.log ?? (() => undefined);
  const slots = new SlotPool(opts.slots, { evictionMs: opts.evictionMs ?? 30_000, lingerMs: opts.lingerMs ?? 2_000 });
  const sessions = new SessionStore(opts.dataDir);
  const drivers: Partial<Record<DriverName, Driver>> = opts.drivers ?? {
    process: createProcessDriver({ sessionsDir: sessions.root }),
  };
  const driverNames = Object.keys(drivers) as DriverName[];
  const ownQueue = runnerTaskQueue(opts.name);
  const dataConverter = opts.dataConverter ?? defaultDataConverter;
  const bootId = opts.bootId ?? crypto.randomUUID();
  /** Session keys this process is running, executing or detached: recover() leaves them alone. */
  const mine = opts.claimed ?? new Set<string>();
  const pending = new Set<Promise<void>>();

  const shutdownGraceTime = opts.shutdownGraceMs ?? 10_000;
  // Cancellation reaches a task on its next heartbeat: keep heartbeats frequent so a stop or a
  // timeout kills the process within about a second.
  const maxHeartbeatThrottleInterval = 1_000;

  const status = () => {
    const snap = slots.snapshot();
    return {
      runnerId: opts.runnerId ?? '',
      bootId,
      version: opts.version ?? '',
      drivers: driverNames,
      slots: snap.capacity,
      free: snap.free,
      accepting: snap.accepting,
      running: slots.runningTasks(),
      at: new Date().toISOString(),
    };
  };

  /** Reports an outcome until the server takes it (the record stays until then, for a restart). */
  const deliver = async (record: SessionRecord, outcome: TaskOutcome, note: string) => {
    const what = `${record.labels.run} task ${record.labels.task} (attempt ${record.labels.attempt})`;
    const fields = taskFields(record.labels);
    if (!opts.report) {
      log(
        `task ${what} ended with exit code ${outcome.exitCode} after the server lost track of it; nothing to report to`,
        fields,
      );
      return;
    }
    for await (const { delayMs } of backoff({ initialMs: 1_000, maxMs: 30_000 })) {
      try {
        await opts.report(record, outcome, note);
        sessions.close(record.labels, outcome);
        log(`reported ${what}: exit code ${outcome.exitCode} (${note})`, fields);
        return;
      } catch (err) {
        log(`could not report ${what} yet (${(err as Error).message}); retrying in ${delayMs / 1000}s`, fields);
      }
    }
  };

  const track = (key: string, work: Promise<void>) => {
    mine.add(key);
    const p = work
      .catch((err: unknown) => log(`session ${key}: ${(err as Error).message}`))
      .finally(() => {
        mine.delete(key);
        pending.delete(p);
      });
    pending.add(p);
  };

  /**
   * Tasks no execution activity holds (re-attached, detached), by session key: each is killed at
   * its recorded deadline, or when its run no longer wants it (asked every few seconds, one
   * `state` query per run for all its tasks here).
   */
  const unattended = new Map<string, Unattended>();
  const checkMs = opts.unattendedCheckMs ?? UNATTENDED_CHECK_MS;
  let checker: NodeJS.Timeout | null = null;
  let checking = false;
  const lastCheckLog = new Map<string, number>();
  const checkRuns = async () => {
    if (checking || !opts.runState) return;
    checking = true;
    try {
      const byRun = new Map<string, Unattended[]>();
      for (const entry of unattended.values()) {
        const list = byRun.get(entry.record.labels.run) ?? [];
        list.push(entry);
        byRun.set(entry.record.labels.run, list);
      }
      for (const [run, entries] of byRun) {
        let state: Pick<RunState, 'tasks'> | null;
        try {
          state = await opts.runState(run);
        } catch (err) {
          if (Date.now() - (lastCheckLog.get(run) ?? 0) >= UNATTENDED_LOG_MS) {
            lastCheckLog.set(run, Date.now());
            log(`could not ask run ${run} about its tasks here (${(err as Error).message}); asking again`, {
              run,
              runner: opts.name,
            });
          }
          continue;
        }
        lastCheckLog.delete(run);
        for (const { record, kill } of entries) {
          const why = unwantedBecause(state, record.labels);
          if (why !== null) kill({ kind: 'unwanted', why });
        }
      }
    } finally {
      checking = false;
    }
  };
  /** Watches a task no activity holds until `release`; `killed` says why it was killed, if it was. */
  const attend = (record: SessionRecord, abort: () => void) => {
    const key = SessionStore.keyOf(record.labels);
    let killed: KillCause | null = null;
    const kill = (cause: KillCause) => {
      if (killed !== null) return;
      killed = cause;
      const what = `task ${record.labels.run}/${record.labels.task} (attempt ${record.labels.attempt})`;
      log(
        cause.kind === 'deadline'
          ? `killing ${what}: its deadline ${record.deadline} passed`
          : `killing ${what}: its run no longer wants it (${cause.why})`,
        taskFields(record.labels),
      );
      abort();
    };
    const deadline = deadlineOf(record);
    const timer =
      deadline === null ? null : setTimeout(() => kill({ kind: 'deadline' }), Math.max(0, deadline - Date.now()));
    unattended.set(key, { record, kill });
    if (checker === null && opts.runState) {
      checker = setInterval(() => void checkRuns(), checkMs);
      checker.unref();
    }
    return {
      killed: (): KillCause | null => killed,
      release: () => {
        if (timer !== null) clearTimeout(timer);
        unattended.delete(key);
        if (unattended.size === 0 && checker !== null) {
          clearInterval(checker);
          checker = null;
        }
      },
    };
  };

  /**
   * How a task no activity held ended: a kill at its deadline is reported as the timeout it is; a
   * task its run no longer wants is not reported (the run has settled it) and its record closes.
   */
  const settleUnattended = async (
    record: SessionRecord,
    outcome: TaskOutcome,
    killed: KillCause | null,
    note: string,
  ): Promise<void> => {
    if (killed?.kind === 'unwanted') {
      sessions.close(record.labels, null);
      log(
        `task ${record.labels.run}/${record.labels.task} (attempt ${record.labels.attempt}) killed: its run no longer wants it (${killed.why}); nothing to report`,
        taskFields(record.labels),
      );
      return;
    }
    await deliver(record, outcome, killed?.kind === 'deadline' ? timeoutNote(record) : note);
  };

  // Pool queues poll only with a free slot (the slot supplier); pinned queues (runs pinned to this
  // runner, rare) poll on a fixed permit of their own, so an idle pinned poller holds no slot.
  const poolQueues = driverNames.flatMap((driver) => [
    { driver, queue: poolTaskQueue(opts.pool, driver), pinned: false },
    { driver, queue: pinnedTaskQueue(opts.name, driver), pinned: true },
  ]);
  const poolWorkers = await Promise.all(
    poolQueues.map(({ driver, queue, pinned }) =>
      Worker.create({
        connection: opts.connection,
        dataConverter,
        namespace: opts.namespace,
        taskQueue: queue,
        identity: `${opts.name}@${queue}/${driver}`,
        activities: createPoolActivities({
          runner: opts.name,
          taskQueue: ownQueue,
          slots,
          underPermit: !pinned,
          ...(opts.signer ? { signer: opts.signer } : {}),
        }),
        ...(opts.tracing ? { interceptors: { activity: opts.tracing.activityInterceptors } } : {}),
        // One poller: an idle poller holds a permit, and permits count against the slots.
        maxConcurrentActivityTaskPolls: 1,
        tuner: {
          workflowTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
          activityTaskSlotSupplier: pinned ? { type: 'fixed-size', numSlots: 1 } : poolSlotSupplier(slots),
          localActivityTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
          nexusTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
        },
        shutdownGraceTime,
      }),
    ),
  );

  const ownWorker = await Worker.create({
    connection: opts.connection,
    dataConverter,
    namespace: opts.namespace,
    taskQueue: ownQueue,
    identity: opts.name,
    activities: {
      ...createRunnerActivities({
        runner: opts.name,
        pool: opts.pool,
        dataDir: opts.dataDir,
        slots,
        drivers,
        sessions: {
          dirFor: (labels) => sessions.dirFor(labels),
          begin: (record) => {
            sessions.begin(record);
            mine.add(SessionStore.keyOf(record.labels));
          },
          setHandle: (labels, handle) => sessions.setHandle(labels, handle),
          close: (labels, outcome) => {
            mine.delete(SessionStore.keyOf(labels));
            sessions.close(labels, outcome);
          },
          lookup: (labels) => sessions.lookup(labels),
          refuse: (labels) => sessions.refuse(labels),
        },
        bootId,
        baseEnv: opts.passEnv ?? {},
        ...(opts.fetchRunEnv ? { fetchRunEnv: opts.fetchRunEnv } : {}),
        ...(opts.signer ? { signer: opts.signer } : {}),
        ...(opts.objectStore ? { objectStore: { ...opts.objectStore, log: (line: string) => log(line) } } : {}),
        detach: (record, outcome, done, kill) => {
          log(
            `task ${record.labels.run}/${record.labels.task} goes on without the server: its outcome is reported when it ends`,
            taskFields(record.labels),
          );
          const watched = attend(record, kill);
          track(
            SessionStore.keyOf(record.labels),
            outcome
              .then((o) => {
                watched.release();
                return settleUnattended(record, o, watched.killed(), 'finished after the server lost track of it');
              })
              .finally(() => {
                watched.release();
                done();
              }),
          );
        },
      }),
      ...(opts.session ? createSessionActivities({ ...opts.session, status }) : {}),
    },
    ...(opts.tracing ? { interceptors: { activity: opts.tracing.activityInterceptors } } : {}),
    // Reserved tasks, one queued behind each, plus log reads and the session; reservations
    // already bound the tasks.
    maxConcurrentActivityTaskExecutions: opts.slots * 3 + 4,
    maxHeartbeatThrottleInterval,
    shutdownGraceTime,
  });

  const retentionMs = opts.logRetentionMs ?? 7 * 24 * 3_600_000;
  const sweep = () => {
    // Task names have no "/": the run id is the key up to its last one.
    const active = new Set(slots.runningTasks().map((key) => runFolder(key.slice(0, key.lastIndexOf('/')))));
    try {
      sweepTaskFiles({ dataDir: opts.dataDir, retentionMs, isActive: (folder) => active.has(folder) });
      sessions.sweepMarkers(retentionMs);
    } catch {
      // A file in use or a permission problem: the next sweep tries again.
    }
  };

  /**
   * Ships the rest of a re-attached task's log from where the store's copy ends, unless its log
   * masks secrets this process does not know (then the rest stays here, and `run logs` reads it
   * from this runner).
   */
  const resumeShipping = async (record: SessionRecord): Promise<LogShipper | null> => {
    if (!opts.objectStore) return null;
    const what = `${record.labels.run} ${record.labels.task} attempt ${record.labels.attempt}`;
    if (logMasksSecrets(record.logFile)) {
      log(`log of ${what}: it masks secrets this runner process does not know; the rest is not shipped to the store`);
      return null;
    }
    const prefix = taskLogPrefix(record.labels.run, record.labels.task, record.labels.attempt);
    try {
      const shipper = new LogShipper({
        store: opts.objectStore.store,
        prefix,
        file: record.logFile,
        secrets: [],
        intervalMs: opts.objectStore.intervalMs,
        from: await storedLogSize(opts.objectStore.store, prefix),
        what,
        log: (line) => log(line),
      });
      // A re-attached container's output is written again and trimmed (the docker driver's
      // reconcileLog): its log is shipped once that is over, not while.
      if (record.driver !== 'docker') shipper.start();
      return shipper;
    } catch (err) {
      log(`log of ${what}: cannot resume shipping (${(err as Error).message}); it stays on this runner`);
      return null;
    }
  };

  const recoverOne = async (record: SessionRecord) => {
    const driver = drivers[record.driver];
    const key = `${record.labels.run}/${record.labels.task}`;
    if (!driver) {
      await deliver(record, vanishedOutcome(record), `the ${record.driver} driver is not offered any more`);
      return;
    }
    const lease = slots.adopt(key);
    // No execution activity holds it: the runner enforces its deadline and its run's stop.
    const kill = new AbortController();
    const watched = attend(record, () => kill.abort());
    const shipper = await resumeShipping(record);
    try {
      const found = await driver.recover(record, kill.signal);
      watched.release();
      if (shipper) void shipper.finish();
      if (found.state === 'finished') {
        // What it wrote to $RUNFLEET_OUTPUT is in its workspace, as for a task that ended attended.
        const outputs = found.result.aborted
          ? {}
          : taskOutputs(
              join(taskWorkspace(opts.dataDir, record.labels.run, record.labels.task), OUTPUT_FILE),
              record.logFile,
            );
        await settleUnattended(
          record,
          {
            exitCode: found.result.exitCode,
            failedStep: found.result.failedStep,
            startedAt: record.startedAt,
            finishedAt: found.finishedAt,
            ...(Object.keys(outputs).length > 0 ? { outputs } : {}),
          },
          // Ended by itself (it had, say, before the deadline passed while the runner was away).
          found.result.aborted ? watched.killed() : null,
          record.bootId === bootId ? 'finished after the server lost track of it' : 'found after the runner restarted',
        );
      } else {
        await deliver(record, vanishedOutcome(record), found.reason);
      }
    } finally {
      watched.release();
      shipper?.stop();
      slots.finishAdopted(lease);
    }
  };

  /**
   * Removes what the drivers hold for this runner that no session record claims and no task of
   * this process runs (a container created just before a kill -9 recorded its id, say): nothing
   * would ever report or remove it.
   */
  const sweepStale = async (recorded: Set<string>) => {
    for (const driver of Object.values(drivers)) {
      try {
        const removed = await driver.sweep({
          runners: [opts.name],
          keep: (labels) => recorded.has(SessionStore.keyOf(labels)) || mine.has(SessionStore.keyOf(labels)),
        });
        if (removed > 0) log(`${driver.name} driver: removed ${removed} stale task(s) no session claims`);
      } catch (err) {
        log(`${driver.name} driver: could not sweep stale tasks (${(err as Error).message}); trying again later`);
      }
    }
  };

  return {
    name: opts.name,
    slots,
    drivers: driverNames,
    status,
    async recover() {
      let n = 0;
      const records = sessions.list();
      for (const record of records) {
        const key = SessionStore.keyOf(record.labels);
        if (mine.has(key)) continue;
        n++;
        log(
          `found task ${record.labels.run}/${record.labels.task} (attempt ${record.labels.attempt}) from an earlier runner process: recovering it`,
          taskFields(record.labels),
        );
        track(key, recoverOne(record));
      }
      // In the background: a slow engine must not hold up serving.
      void sweepStale(new Set(records.map((r) => SessionStore.keyOf(r.labels))));
      return n;
    },
    async sweepGone(runners) {
      const others = runners.filter((r) => r !== opts.name);
      if (others.length === 0) return 0;
      let removed = 0;
      for (const driver of Object.values(drivers)) {
        try {
          removed += await driver.sweep({ runners: others, keep: () => false });
        } catch (err) {
          log(`${driver.name} driver: could not sweep what purged runners left (${(err as Error).message})`);
        }
      }
      if (removed > 0) log(`removed ${removed} task(s) that purged runners of this pool left behind`);
      return removed;
    },
    async settled() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    async run() {
      sweep();
      const sweeper = setInterval(sweep, RETENTION_SWEEP_MS);
      sweeper.unref();
      // Free and busy slots on the runtime's meter (src/metrics.ts), exported with the SDK's metrics.
      const slotsGauge = Runtime.instance().metricMeter.createGauge(
        METRICS.runnerSlots.name,
        'int',
        METRICS.runnerSlots.unit,
        METRICS.runnerSlots.description,
      );
      const gauge = () => {
        const s = status();
        slotsGauge.set(s.free, { runner: opts.name, state: 'free' });
        slotsGauge.set(s.slots - s.free, { runner: opts.name, state: 'busy' });
      };
      gauge();
      const gauger = setInterval(gauge, SLOT_GAUGE_MS);
      gauger.unref();
      try {
        await Promise.all([...poolWorkers.map((w) => w.run()), ownWorker.run()]);
      } finally {
        clearInterval(sweeper);
        clearInterval(gauger);
      }
    },
    readiness() {
      const stopped = [...poolWorkers, ownWorker].find((w) => w.getState() !== 'RUNNING');
      if (stopped)
        return { ready: false, reason: `worker ${stopped.options.taskQueue} is ${stopped.getState().toLowerCase()}` };
      const snap = slots.snapshot();
      if (!snap.accepting) return { ready: false, reason: 'not taking work (disabled)' };
      return { ready: true, reason: `serving with ${snap.free} of ${snap.capacity} slots free` };
    },
    shutdown() {
      slots.setAccepting(false);
      for (const w of [...poolWorkers, ownWorker]) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}

/** A task whose processes are gone without an exit status: it failed, and nobody knows how far it got. */
function vanishedOutcome(record: SessionRecord): TaskOutcome {
  return { exitCode: 255, failedStep: null, startedAt: record.startedAt, finishedAt: new Date().toISOString() };
}

export function defaultRunnerDataDir(home: string, name: string): string {
  return join(home, 'runners', name);
}
