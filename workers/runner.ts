/**
 * A runner process: two workers over one connection.
 *
 * - On the pool queue (`pool/<pool>`) it answers reservations, polling only while it has a
 *   free slot (its activity slot supplier is the runner's SlotPool).
 * - On its own queue (`runner/<name>`) it executes the tasks it reserved and serves log reads.
 */
import type { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { join } from 'node:path';
import { createPoolActivities } from '../activities/pool';
import { createRunnerActivities, type TaskStartedNotice } from '../activities/runner';
import { poolTaskQueue, runnerTaskQueue } from '../src/ids';
import { createProcessDriver, type Driver } from '../src/runner/process-driver';
import { SlotPool, poolSlotSupplier } from '../src/runner/slots';
import type { DriverName } from '../src/types';
import { taskStartedSignal } from '../workflows/messages';

export interface RunnerOptions {
  connection: NativeConnection;
  client: Client;
  namespace: string;
  name: string;
  pool: string;
  slots: number;
  dataDir: string;
  /** A reserved slot not used in this time is given back (matches the run's eviction timeout). */
  evictionMs?: number;
  /** Environment variables of this process passed to tasks (an allowlist: never secrets). */
  passEnv?: Record<string, string>;
  /** Time running tasks get to finish when the runner shuts down. */
  shutdownGraceMs?: number;
}

export interface Runner {
  readonly name: string;
  readonly slots: SlotPool;
  run(): Promise<void>;
  shutdown(): void;
}

/** Variables a task inherits from the runner's environment when nothing else is said. */
export const DEFAULT_PASS_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'USER', 'SHELL', 'TMPDIR'] as const;

export async function createRunner(opts: RunnerOptions): Promise<Runner> {
  const slots = new SlotPool(opts.slots, opts.evictionMs ?? 30_000);
  const drivers: Record<string, Driver> = { process: createProcessDriver() };
  const driverNames = Object.keys(drivers) as DriverName[];
  const ownQueue = runnerTaskQueue(opts.name);

  const notifyStarted = async (n: TaskStartedNotice) => {
    await opts.client.workflow
      .getHandle(n.runId)
      .signal(taskStartedSignal, { task: n.task, attempt: n.attempt, runner: n.runner, startedAt: n.startedAt });
  };

  const shutdownGraceTime = opts.shutdownGraceMs ?? 10_000;
  // Cancellation reaches a task on its next heartbeat: keep heartbeats frequent so a stop or a
  // timeout kills the process within about a second.
  const maxHeartbeatThrottleInterval = 1_000;

  const poolWorker = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: poolTaskQueue(opts.pool),
    identity: `${opts.name}@pool`,
    activities: createPoolActivities({ runner: opts.name, taskQueue: ownQueue, drivers: driverNames, slots }),
    tuner: {
      workflowTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
      activityTaskSlotSupplier: poolSlotSupplier(slots),
      localActivityTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
      nexusTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
    },
    shutdownGraceTime,
  });

  const ownWorker = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: ownQueue,
    identity: opts.name,
    activities: createRunnerActivities({
      runner: opts.name,
      dataDir: opts.dataDir,
      slots,
      drivers,
      baseEnv: opts.passEnv ?? {},
      notifyStarted,
    }),
    // Reserved tasks plus log reads; reservations already bound the tasks.
    maxConcurrentActivityTaskExecutions: opts.slots * 2 + 4,
    maxHeartbeatThrottleInterval,
    shutdownGraceTime,
  });

  return {
    name: opts.name,
    slots,
    async run() {
      await Promise.all([poolWorker.run(), ownWorker.run()]);
    },
    shutdown() {
      slots.setAccepting(false);
      if (poolWorker.getState() === 'RUNNING') poolWorker.shutdown();
      if (ownWorker.getState() === 'RUNNING') ownWorker.shutdown();
    },
  };
}

export function defaultRunnerDataDir(home: string, name: string): string {
  return join(home, 'runners', name);
}
