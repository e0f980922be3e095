/**
 * A runner process: workers over one connection.
 *
 * - On its pool's queue for each driver it offers (`pool/<pool>`, `pool/<pool>/<driver>`) it
 *   answers reservations, polling only while it has a free slot (the activity slot supplier of
 *   those workers is the runner's SlotPool, shared between them).
 * - On its own queue (`runner/<name>`) it executes the tasks on its leases and serves log reads.
 */
import { Worker, type NativeConnection } from '@temporalio/worker';
import { join } from 'node:path';
import { createPoolActivities } from '../activities/pool';
import { createRunnerActivities, runFolder } from '../activities/runner';
import { sweepTaskFiles } from '../src/runner/retention';
import { poolTaskQueue, runnerTaskQueue } from '../src/ids';
import { createProcessDriver, type Driver } from '../src/runner/process-driver';
import { SlotPool, poolSlotSupplier } from '../src/runner/slots';
import { dataConverter } from '../src/codec/compression';
import type { DriverName } from '../src/types';

export interface RunnerOptions {
  connection: NativeConnection;
  namespace: string;
  name: string;
  pool: string;
  slots: number;
  dataDir: string;
  /** A granted lease no task uses in this time is given back (the run's eviction timeout). */
  evictionMs?: number;
  /** After a task, its lease waits this long for the run's next task (the run's lease linger). */
  lingerMs?: number;
  /** Environment variables of this process passed to tasks (an allowlist: never secrets). */
  passEnv?: Record<string, string>;
  /** Time running tasks get to finish when the runner shuts down. */
  shutdownGraceMs?: number;
  /** Task logs and workspaces of a run are removed this long after their last change. Default 7 days. */
  logRetentionMs?: number;
}

export interface Runner {
  readonly name: string;
  readonly slots: SlotPool;
  run(): Promise<void>;
  shutdown(): void;
  /** Serving work: every worker running and the slots taking work. */
  readiness(): { ready: boolean; reason: string };
}

/** How often expired task logs and workspaces are looked for. */
const RETENTION_SWEEP_MS = 3_600_000;

/** Variables a task inherits from the runner's environment when nothing else is said. */
export const DEFAULT_PASS_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'USER', 'SHELL', 'TMPDIR'] as const;

export async function createRunner(opts: RunnerOptions): Promise<Runner> {
  const slots = new SlotPool(opts.slots, { evictionMs: opts.evictionMs ?? 30_000, lingerMs: opts.lingerMs ?? 2_000 });
  const drivers: Record<string, Driver> = { process: createProcessDriver() };
  const driverNames = Object.keys(drivers) as DriverName[];
  const ownQueue = runnerTaskQueue(opts.name);

  const shutdownGraceTime = opts.shutdownGraceMs ?? 10_000;
  // Cancellation reaches a task on its next heartbeat: keep heartbeats frequent so a stop or a
  // timeout kills the process within about a second.
  const maxHeartbeatThrottleInterval = 1_000;

  const poolWorkers = await Promise.all(
    driverNames.map((driver) =>
      Worker.create({
        connection: opts.connection,
        dataConverter,
        namespace: opts.namespace,
        taskQueue: poolTaskQueue(opts.pool, driver),
        identity: `${opts.name}@pool/${driver}`,
        activities: createPoolActivities({ runner: opts.name, taskQueue: ownQueue, slots }),
        // One poller: an idle poller holds a permit, and permits count against the slots.
        maxConcurrentActivityTaskPolls: 1,
        tuner: {
          workflowTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
          activityTaskSlotSupplier: poolSlotSupplier(slots),
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
    activities: createRunnerActivities({
      runner: opts.name,
      dataDir: opts.dataDir,
      slots,
      drivers,
      baseEnv: opts.passEnv ?? {},
    }),
    // Reserved tasks plus log reads; reservations already bound the tasks.
    maxConcurrentActivityTaskExecutions: opts.slots * 2 + 4,
    maxHeartbeatThrottleInterval,
    shutdownGraceTime,
  });

  const retentionMs = opts.logRetentionMs ?? 7 * 24 * 3_600_000;
  const sweep = () => {
    // Task names have no "/": the run id is the key up to its last one.
    const active = new Set(slots.runningTasks().map((key) => runFolder(key.slice(0, key.lastIndexOf('/')))));
    try {
      sweepTaskFiles({ dataDir: opts.dataDir, retentionMs, isActive: (folder) => active.has(folder) });
    } catch {
      // A file in use or a permission problem: the next sweep tries again.
    }
  };

  return {
    name: opts.name,
    slots,
    async run() {
      sweep();
      const sweeper = setInterval(sweep, RETENTION_SWEEP_MS);
      sweeper.unref();
      try {
        await Promise.all([...poolWorkers.map((w) => w.run()), ownWorker.run()]);
      } finally {
        clearInterval(sweeper);
      }
    },
    readiness() {
      const stopped = [...poolWorkers, ownWorker].find((w) => w.getState() !== 'RUNNING');
      if (stopped)
        return { ready: false, reason: `worker ${stopped.options.taskQueue} is ${stopped.getState().toLowerCase()}` };
      if (!slots.snapshot().accepting) return { ready: false, reason: 'not taking work' };
      return { ready: true, reason: `serving with ${slots.snapshot().free} of ${slots.capacity} slots free` };
    },
    shutdown() {
      slots.setAccepting(false);
      for (const w of [...poolWorkers, ownWorker]) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}

export function defaultRunnerDataDir(home: string, name: string): string {
  return join(home, 'runners', name);
}
