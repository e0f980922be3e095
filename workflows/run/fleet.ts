/**
 * The fleet path: a task with `fleet` claims an instance of its resource class (the fleet launches
 * one when none is idle and waits for its runner), reserves that runner's own queue, tells the
 * fleet the task starts (refused once the claim is lost: nothing runs on an instance being
 * terminated), runs it, and releases the instance. A task lost there keeps its claim until its
 * lease runs out (or the task is given back, `lost.ts`).
 */
import { CancellationScope, isCancellation, sleep } from '@temporalio/workflow';
import { isFinal } from '../../src/dag/engine';
import { formatDuration } from '../../src/duration';
import { LIMITS, type TaskSpec } from '../../src/spec/schema';
import { fleetLease } from './activities';
import type { RunContext } from './context';
import { describeError, isApplicationFailure } from './failures';
import type { Leases } from './leases';

/** A fleet task holds its instance this much longer than its own timeout. */
const FLEET_LEASE_MARGIN_MS = 10 * 60_000;
/** Claims a fleet task makes at most (a claim lost before the start, a lease not taken). */
const FLEET_ROUNDS = 3;
/** Reservations on a claimed instance's runner before the claim is given up (2 s apart). */
const FLEET_RESERVE_ATTEMPTS = 6;
/** A fleet class at its cap: ask again after this, doubling up to the max. */
const FLEET_CAPACITY_WAIT_MS = 5_000;
const FLEET_CAPACITY_WAIT_MAX_MS = 60_000;

export async function runOnFleet(ctx: RunContext, leases: Leases, task: TaskSpec): Promise<void> {
  const t = ctx.taskState(task.name);
  const stopped = (what: string) => ctx.cancelledReason(task.name) ?? `the run was stopped ${what}`;
  const fleet = task.fleet as NonNullable<TaskSpec['fleet']>;
  const where = `fleet "${fleet.name}" class "${fleet.class}"`;
  const leaseMs = (task.timeout ?? LIMITS.defaultTimeoutMs) + FLEET_LEASE_MARGIN_MS;
  let capacityWaitMs = FLEET_CAPACITY_WAIT_MS;
  for (let round = 1; round <= FLEET_ROUNDS; round++) {
    const requestId = `${ctx.state.id}/${task.name}/${round}`;
    t.reason = `claiming an instance of ${where}`;
    let got: { instanceId: string; runner: string };
    try {
      got = await fleetLease.provisionFleetRunner({
        fleet: fleet.name,
        resourceClass: fleet.class,
        requestId,
        leaseMs,
      });
    } catch (err) {
      if (isFinal(t.status)) return;
      if (isApplicationFailure(err, 'CapacityExhausted')) {
        // Busy, not broken: wait for an instance to be released, as a queued CI job does.
        t.reason = `waiting for an instance of ${where}: ${describeError(err)}; asking again in ${formatDuration(capacityWaitMs)}`;
        try {
          await sleep(capacityWaitMs);
        } catch (err2) {
          if (!isCancellation(err2)) throw err2;
          if (!isFinal(t.status)) ctx.finish(t, 'cancelled', stopped(`while waiting for an instance of ${where}`));
          return;
        }
        capacityWaitMs = Math.min(capacityWaitMs * 2, FLEET_CAPACITY_WAIT_MAX_MS);
        round--;
        continue;
      }
      if (isCancellation(err)) ctx.finish(t, 'cancelled', stopped(`while claiming an instance of ${where}`));
      else ctx.finish(t, 'failed', `no instance of ${where}: ${describeError(err)}`);
      return;
    }
    const hold = { fleet: fleet.name, instanceId: got.instanceId, requestId };
    const q = leases.runnerQueue(got.runner, task);
    let keepClaim = false;
    try {
      t.reason = `instance ${got.instanceId} of ${where} claimed; reserving its runner "${got.runner}"`;
      // The run's previous task there may have left its lease lingering: use it. Else reserve;
      // a slot may be held a moment longer by another run's lingering lease.
      leases.dropStale(q);
      q.ready = [task.name]; // so a failed reservation says why on the task
      for (let i = 0; i < FLEET_RESERVE_ATTEMPTS && q.idle.length === 0; i++) {
        if (i > 0) await sleep(2_000);
        await leases.reserve(q, 1);
      }
      q.ready = [];
      const lease = q.idle.shift();
      if (!lease) {
        ctx.finish(
          t,
          'failed',
          `runner "${got.runner}" of instance ${got.instanceId} (${where}) took no reservation: ${t.reason ?? 'no answer'}`,
        );
        return;
      }
      try {
        await fleetLease.startFleetTask({ ...hold, leaseMs });
      } catch (err) {
        if (isCancellation(err)) throw err;
        t.reason = `the claim on ${got.instanceId} was lost before the task started (${describeError(err)})`;
        continue;
      }
      await leases.execute(q, task, lease);
      // Lost: its runner may still be running it; the claim stays until the lease runs out.
      if (t.status === 'lost') {
        keepClaim = true;
        ctx.lostClaims[task.name] = hold;
      }
      // `pending`: execute() put it back (never started, or an idempotent retry): claim again.
      // A failure to retry waits on its own and is dispatched again through the DAG.
      if (t.status !== 'pending' || t.retryAt !== undefined) return;
    } catch (err) {
      if (!isCancellation(err)) throw err;
      if (!isFinal(t.status)) ctx.finish(t, 'cancelled', stopped(`on instance ${got.instanceId} of ${where}`));
      return;
    } finally {
      if (!keepClaim) {
        await CancellationScope.nonCancellable(() =>
          // Refused only when the claim is gone already (the instance was terminated).
          fleetLease.releaseFleetRunner(hold).catch(() => undefined),
        );
      }
    }
  }
  ctx.finish(t, 'failed', `${where}: no instance held the task after ${FLEET_ROUNDS} claims`);
}
