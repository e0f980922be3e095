/** The activities a run calls, with the timeouts and retries each needs (and why). */
import { proxyActivities } from '@temporalio/workflow';
import type { FleetLeaseActivities } from '../../activities/fleet-lease';
import type {
  PoolActivities,
  RegistryActivities,
  RunnerActivities,
  RunnerMatchActivities,
} from '../../activities/types';
import { NON_RETRYABLE_TYPES } from '../../src/errors';
import type { RunOptions } from '../../src/spec/schema';

/** The operator-key check of approvals: quick, on the control worker. */
export const control = proxyActivities<Pick<RegistryActivities, 'verifyApproval'>>({
  startToCloseTimeout: '30s',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

/** Which registered runners have the labels a task asks for: registry queries on the control worker. */
export const matcher = proxyActivities<RunnerMatchActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: 1_000, maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

/** Claims and releases of fleet instances (tasks with `fleet`), on the control worker; idempotent. */
export const fleetLease = proxyActivities<FleetLeaseActivities>({
  // A claim may launch an instance and wait for its runner (the fleet's registrationTimeout).
  startToCloseTimeout: '15m',
  // A class at its cap is the run's to wait for (fleet.ts), not the activity's to retry.
  retry: {
    initialInterval: 1_000,
    maximumAttempts: 5,
    nonRetryableErrorTypes: [...NON_RETRYABLE_TYPES, 'CapacityExhausted'],
  },
});

/** Reservations on a pool's (or one runner's pinned) reservation queue. */
export function poolOn(taskQueue: string, options: RunOptions): PoolActivities {
  return proxyActivities<PoolActivities>({
    taskQueue,
    // Nobody answered in time: ask again (nothing has started, so this is always safe).
    scheduleToStartTimeout: options.reservationTimeout,
    // Granting leases is bookkeeping on the runner: seconds at most.
    startToCloseTimeout: 10_000,
    retry: { initialInterval: 200, maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
  });
}

/** One execution of a task on the runner that granted its lease. */
export function executionOn(
  taskQueue: string,
  activityId: string,
  timeoutMs: number,
  options: RunOptions,
): RunnerActivities {
  return proxyActivities<RunnerActivities>({
    taskQueue,
    // Readable in `temporal workflow describe`: which task, which attempt.
    activityId,
    // The lease holds the slot this long; past it the runner has given it back.
    scheduleToStartTimeout: options.evictionTimeout,
    // The task's timeout, enforced by the server.
    startToCloseTimeout: timeoutMs,
    heartbeatTimeout: options.heartbeatTimeout,
    // At most once: the scheduler never starts a task twice by itself.
    retry: { maximumAttempts: 1 },
    cancellationType: 'WAIT_CANCELLATION_COMPLETED',
  });
}

/**
 * A question to a runner about a lost task: it waits `waitMs` on the runner's queue (a runner
 * that is away answers when it is back), then is asked again.
 */
export function lookupOn(taskQueue: string, activityId: string, waitMs: number): RunnerActivities {
  return proxyActivities<RunnerActivities>({
    taskQueue,
    activityId,
    scheduleToStartTimeout: waitMs,
    startToCloseTimeout: 30_000,
    retry: { maximumAttempts: 1 },
  });
}

/**
 * Asks the runner of a cancelled execution to heartbeat it now (`pokeTask`), so the cancel reaches
 * it at once rather than at its next heartbeat. Best effort: a runner that is away hears of the
 * cancel with its next heartbeat anyway.
 */
export function pokeOn(taskQueue: string, activityId: string): Pick<RunnerActivities, 'pokeTask'> {
  return proxyActivities<RunnerActivities>({
    taskQueue,
    activityId,
    scheduleToStartTimeout: 10_000,
    startToCloseTimeout: 10_000,
    retry: { maximumAttempts: 1 },
  });
}
