/**
 * The lease scheduler: ready tasks onto runners' slot leases.
 *
 *   reserve  (pool queue: only runners with a free slot poll it; one answer grants 1..n leases)
 *   execute  (the granting runner's own queue, one task per lease)
 *
 * When a task ends, its lease is reused at once for the run's next ready task of the same queue,
 * so a busy run pays for a reservation per slot, not per task. The runner keeps an unused lease
 * only briefly (linger) and refuses, before starting anything, a task on a lease it gave back;
 * the run then reserves again.
 *
 * A queue is one pool and driver; or one runner and driver (a pinned run, a fleet task's claimed
 * instance); or one pool, driver and label set (`runs_on`): the registry names the runners that
 * have those labels (an operator granted them: a runner cannot claim a label), and the run
 * reserves on their own reservation queues in turn.
 *
 * At most once: a reservation nobody answers times out before anything started and is asked
 * again; an execution that never started (schedule-to-start timeout) goes back to the queue; a
 * started execution whose runner stops heartbeating is lost (`lost.ts`), never started again
 * unless the task is idempotent. A task's timeout is its execution's start-to-close timeout: a
 * server-side timer, which does not trust the runner.
 */
import { CancellationScope, isCancellation, sleep, workflowInfo } from '@temporalio/workflow';
import { formatDuration } from '../../src/duration';
import { pinnedTaskQueue, poolTaskQueue } from '../../src/ids';
import { neededOutputs } from '../../src/run/outputs';
import { labelText, requeueTask, reserveTask } from '../../src/run/transitions';
import { LIMITS, envBytes, type TaskSpec } from '../../src/spec/schema';
import { executionOn, matcher, pokeOn, poolOn } from './activities';
import type { RunContext } from './context';
import { describeError, isApplicationFailure, purgedReason, timeoutType } from './failures';
import type { LostTasks } from './lost';
import { settleOutcome, settleTimeout } from './outcomes';

/** Tasks reserved or running at once in one run (also keeps pending activities far below 2,000). */
export const MAX_TASKS_IN_FLIGHT = 500;
/** Reservations of one queue in flight at once: enough to reach several runners. */
const MAX_RESERVATIONS_IN_FLIGHT = 8;
/** Leases asked for in one reservation (a runner grants at most this many at once anyway). */
const MAX_LEASES_PER_RESERVATION = 100;
/** A run env at most this large travels in each task's input; a larger one is read by reference. */
const RUN_ENV_INLINE_BYTES = 8 * 1024;
/** A refused reservation answer (someone else answers in a runner's name): reserve again after this. */
const REFUSED_RESERVATION_PAUSE_MS = 5_000;
/**
 * Which runners have a label set is read again after this (runners come, go, are disabled), and
 * at once when none of those known answered; a label set nobody has is looked up again after it.
 */
const MATCH_FRESH_MS = 30_000;
const NO_MATCH_PAUSE_MS = 30_000;

export interface Lease {
  id: string;
  runner: string;
  taskQueue: string;
  /** Workflow time (ms) the lease became idle. */
  idleSince: number;
}

/** Ready tasks and idle leases of one queue. */
export interface Queue {
  pool: string;
  /** Reserve on this runner's own queue (a fleet task's claimed instance), not the pool's. */
  runner?: string;
  driver: TaskSpec['driver'];
  /** `runs_on`: reserve on the registered runners of the pool that have these labels. */
  labels?: Record<string, string>;
  match?: { runners: string[]; at: number; next: number };
  ready: string[];
  idle: Lease[];
  reservations: number;
  wanted: number;
}

export interface Leases {
  /** A ready task onto its queue. */
  enqueue(task: TaskSpec): void;
  /** Takes a task off its queue before it was reserved (cancelled on its own); true if it was there. */
  dequeue(task: TaskSpec): boolean;
  /** Ready tasks onto idle leases; reservations for the rest. */
  scheduleAll(): void;
  /** The queue of one (fleet) runner and driver: its idle leases serve the run's later tasks there. */
  runnerQueue(runner: string, task: TaskSpec): Queue;
  reserve(q: Queue, want: number): Promise<void>;
  execute(q: Queue, task: TaskSpec, lease: Lease): Promise<void>;
  /** A runner that is gone (purged, silent): its idle leases are forgotten. */
  forgetRunner(runner: string): void;
  /** Drops idle leases older than half the runner's linger (they may be gone already). */
  dropStale(q: Queue): void;
}

export function createLeases(ctx: RunContext, lost: LostTasks): Leases {
  const { options, spec, state } = ctx;
  const queues = new Map<string, Queue>();
  /** Fleet tasks' queues, by runner: served by the fleet path, never by scheduleAll(). */
  const fleetQueues = new Map<string, Queue>();
  /** Numbers this run's reservations: the answer signs it, so an old answer cannot stand for a new one. */
  let reservationCount = 0;
  // A large run env is read by each runner once (runEnvQuery), sealed for that runner alone.
  const runEnvSize = envBytes(spec.env);
  const runEnvInline = runEnvSize <= RUN_ENV_INLINE_BYTES;

  /** When each queued task became ready (workflow time): its dispatch latency ends at its reservation. */
  const readySince = new Map<string, number>();

  const leases: Leases = {
    enqueue: (task) => {
      readySince.set(task.name, Date.now());
      queueOf(task).ready.push(task.name);
    },
    dequeue(task) {
      const q = queueOf(task);
      const i = q.ready.indexOf(task.name);
      if (i < 0) return false;
      q.ready.splice(i, 1);
      return true;
    },
    scheduleAll() {
      for (const q of queues.values()) schedule(q);
    },
    runnerQueue(runner, task) {
      const key = `${runner}\u0000${task.driver}`;
      let q = fleetQueues.get(key);
      if (!q) {
        q = { pool: task.pool, runner, driver: task.driver, ready: [], idle: [], reservations: 0, wanted: 0 };
        fleetQueues.set(key, q);
      }
      return q;
    },
    reserve,
    execute,
    forgetRunner(runner) {
      for (const q of queues.values()) forget(q, runner);
    },
    dropStale(q) {
      const nowMs = Date.now();
      q.idle = q.idle.filter((l) => nowMs - l.idleSince < options.leaseLinger / 2);
    },
  };
  return leases;

  function queueOf(task: TaskSpec): Queue {
    const labels = task.runs_on && Object.keys(task.runs_on).length > 0 ? task.runs_on : undefined;
    // A pinned run reserves on its runner's queues whatever the task's pool: one queue a driver.
    const base = options.runner ? task.driver : `${task.pool}\u0000${task.driver}`;
    const key = labels && !options.runner ? `${base}\u0000${labelText(labels)}` : base;
    let q = queues.get(key);
    if (!q) {
      q = { pool: task.pool, driver: task.driver, ready: [], idle: [], reservations: 0, wanted: 0 };
      if (labels && !options.runner) q.labels = labels;
      queues.set(key, q);
    }
    return q;
  }

  function schedule(q: Queue): void {
    if (ctx.draining()) return; // finish what runs, then continue as new
    leases.dropStale(q);
    while (q.ready.length > 0 && q.idle.length > 0 && ctx.tasksInFlight < MAX_TASKS_IN_FLIGHT) {
      const lease = q.idle.shift() as Lease;
      const name = q.ready.shift() as string;
      ctx.tasksInFlight++;
      ctx.track(() => execute(q, ctx.task(name), lease), { task: name, settled: () => ctx.tasksInFlight-- });
    }
    while (q.ready.length > q.wanted && q.reservations < MAX_RESERVATIONS_IN_FLIGHT) {
      // Leases asked for count against the in-flight bound too (reserve() adds to q.wanted at once).
      const room = MAX_TASKS_IN_FLIGHT - ctx.tasksInFlight - q.wanted;
      if (room <= 0) break;
      const want = Math.min(q.ready.length - q.wanted, MAX_LEASES_PER_RESERVATION, room);
      ctx.track(() => reserve(q, want));
    }
  }

  function setReasons(q: Queue, reason: string | null): void {
    for (const name of q.ready) ctx.taskState(name).reason = reason;
  }

  /** The runner whose own queue a labelled queue reserves on next, or null (said on the tasks). */
  async function labelledRunner(q: Queue): Promise<string | null> {
    const labels = q.labels as Record<string, string>;
    if (!q.match || q.match.runners.length === 0 || Date.now() - q.match.at >= MATCH_FRESH_MS) {
      const answer = await matcher.matchRunners({ pool: q.pool, driver: q.driver, labels });
      q.match = { runners: answer.runners, at: Date.now(), next: 0 };
      if (answer.runners.length === 0) {
        const driver = q.driver === 'process' ? '' : ` with the ${q.driver} driver`;
        setReasons(
          q,
          `no runner of pool "${q.pool}"${driver} has the labels ${labelText(labels)}` +
            `${answer.why ? ` (${answer.why})` : ''}; looking again in ${formatDuration(NO_MATCH_PAUSE_MS)}`,
        );
        await sleep(NO_MATCH_PAUSE_MS);
        return null;
      }
    }
    const m = q.match;
    const runner = m.runners[m.next % m.runners.length] as string;
    m.next++;
    return runner;
  }

  async function reserve(q: Queue, want: number): Promise<void> {
    q.reservations++;
    q.wanted += want;
    let runner: string | undefined;
    try {
      // A fleet task's claimed runner, or the runner the whole run is pinned to, or one that has
      // the labels; else the pool.
      runner = q.runner ?? options.runner;
      if (runner === undefined && q.labels) {
        const matched = await labelledRunner(q);
        if (matched === null) return;
        runner = matched;
      }
      const pool = poolOn(runner ? pinnedTaskQueue(runner, q.driver) : poolTaskQueue(q.pool, q.driver), options);
      const nonce = `${workflowInfo().runId}/${++reservationCount}`;
      const r = await pool.reserveSlots({ runId: state.id, driver: q.driver, want, nonce });
      if (ctx.patches.has('runnerProofs')) {
        const { runner: by, taskQueue, leases: granted, proof } = r;
        const refused = await ctx.proofs.check(
          { about: 'reservation', run: state.id, runner: by, nonce, taskQueue, leases: granted },
          proof,
        );
        if (refused) {
          // Its leases are not used (they lapse on the runner, if it is one); reserve again soon.
          ctx.refuse(by, null, refused);
          setReasons(q, `${refused}; reserving again`);
          await sleep(REFUSED_RESERVATION_PAUSE_MS);
          return;
        }
      }
      const idleSince = Date.now();
      for (const id of r.leases) q.idle.push({ id, runner: r.runner, taskQueue: r.taskQueue, idleSince });
      setReasons(q, null);
    } catch (err) {
      if (isCancellation(err)) throw err;
      const why =
        timeoutType(err) === 'SCHEDULE_TO_START'
          ? `none answered in ${formatDuration(options.reservationTimeout)}`
          : describeError(err);
      const driver = q.driver === 'process' ? '' : ` with the ${q.driver} driver`;
      let reason: string;
      if (options.runner) {
        reason = `waiting for runner "${options.runner}"${driver}, which this run is pinned to (${why}; asking again)`;
      } else if (q.labels && runner !== undefined) {
        // Ask the next one; once each known runner has been asked, read the registry again.
        if (q.match && q.match.next >= q.match.runners.length) q.match.at = 0;
        reason = `waiting for a runner of pool "${q.pool}"${driver} with the labels ${labelText(q.labels)} (runner "${runner}": ${why}; asking again)`;
      } else {
        reason = `waiting for a runner of pool "${q.pool}"${driver} (${why}; asking again)`;
      }
      setReasons(q, reason);
    } finally {
      q.reservations--;
      q.wanted -= want;
    }
  }

  async function execute(q: Queue, task: TaskSpec, lease: Lease): Promise<void> {
    const t = ctx.taskState(task.name);
    const timeoutMs = task.timeout ?? LIMITS.defaultTimeoutMs;
    const attempt = reserveTask(t, lease.runner);
    delete t.retryAt;
    const since = readySince.get(task.name);
    if (since !== undefined) {
      readySince.delete(task.name);
      ctx.metrics.taskReserved(task.pool, Date.now() - since);
    }
    const runner = executionOn(lease.taskQueue, `exec/${task.name}/${attempt}`, timeoutMs, options);
    /** True when a report settled this attempt while its execution activity was still out. */
    const reportedMeanwhile = () => t.attempts !== attempt || t.status !== 'reserved';
    let executing = true;
    // The runner heartbeats a third of the heartbeat timeout apart: a cancel would wait that long.
    // The patch is asked only when there is a cancel, so a run without one records no marker.
    CancellationScope.current().cancelRequested.catch(() => {
      if (!executing || !ctx.patches.has('stopPoke')) return;
      const poke = pokeOn(lease.taskQueue, `poke/${task.name}/${attempt}`);
      CancellationScope.nonCancellable(() => poke.pokeTask({ runId: state.id, task: task.name, attempt })).catch(
        () => undefined, // away: it hears of the cancel with its next heartbeat
      );
    });
    // Nothing else of this run waits for a slot (every other task is settled or under way): the
    // runner frees this one when the task ends. A retry or a rerun reserves anew. Tasks queued
    // here answer at once; the walk over every task is for a queue that has run dry.
    const releaseLease =
      q.ready.length === 0 &&
      !Object.values(state.tasks).some((o) => o.status === 'pending' || o.status === 'lost') &&
      ctx.patches.has('releaseLastLease');
    try {
      const outcome = await runner.executeTask({
        runId: state.id,
        leaseId: lease.id,
        attempt,
        task,
        ...(releaseLease ? { releaseLease } : {}),
        ...(runEnvInline ? { runEnv: spec.env ?? {} } : { runEnvRef: { bytes: runEnvSize } }),
        ...(spec.secret_env ? { runSecretEnv: spec.secret_env } : {}),
        ...neededOutputs(task.depends, state.tasks),
      });
      executing = false;
      if (reportedMeanwhile()) return;
      if (ctx.patches.has('runnerProofs')) {
        const statement = {
          about: 'execution',
          run: state.id,
          task: task.name,
          attempt,
          runner: lease.runner,
          lease: lease.id,
          outcome,
        } as const;
        // The runner's key is known by now (its reservation was checked): no await, as a rule.
        const answer = ctx.proofs.checkKnown(statement, outcome.proof);
        const refused = answer !== undefined ? answer : await ctx.proofs.check(statement, outcome.proof);
        if (reportedMeanwhile()) return;
        if (refused) {
          // At most once: this result is not the runner's, so the task may run there (someone
          // completed its execution by id) or may never have reached it (someone polled its
          // queue). Neither success nor a retry: lost, and the runner is asked, as for a silent one.
          ctx.refuse(lease.runner, task.name, refused);
          lost.lose(
            task.name,
            `${refused}; the attempt is lost: asking runner "${lease.runner}" what it knows`,
            'always',
          );
          return;
        }
      }
      settleOutcome(ctx, task.name, outcome, null);
      // The runner keeps the lease for our next task, unless it was told there would be none.
      if (!releaseLease) q.idle.push({ ...lease, idleSince: Date.now() });
    } catch (err) {
      executing = false;
      // The runner came back and reported before this execution timed out: its outcome stands.
      if (reportedMeanwhile()) return;
      if (isCancellation(err)) {
        const by = ctx.cancelledReason(task.name);
        ctx.finish(
          t,
          'cancelled',
          by
            ? `${by}; runner "${lease.runner}" killed the task`
            : `the run was stopped; runner "${lease.runner}" killed the task`,
        );
        return;
      }
      const type = timeoutType(err);
      if (type === 'SCHEDULE_TO_START' || isApplicationFailure(err, 'LeaseExpired')) {
        // Never started: back to the queue. Forget the runner's other leases if it is silent.
        if (type === 'SCHEDULE_TO_START') forget(q, lease.runner);
        const why =
          type === 'SCHEDULE_TO_START' ? `no answer in ${formatDuration(options.evictionTimeout)}` : 'lease given back';
        requeueTask(t, `runner "${lease.runner}" did not take the task (${why}); reserving again`, true);
        q.ready.unshift(task.name);
        return;
      }
      if (type === 'HEARTBEAT') {
        forget(q, lease.runner);
        const why = `runner "${lease.runner}" stopped heartbeating (silent for ${formatDuration(options.heartbeatTimeout)})`;
        if (task.idempotent && t.attempts < options.maxAttempts) {
          requeueTask(
            t,
            `${why}; the task is idempotent: starting it again (attempt ${t.attempts + 1} of ${options.maxAttempts})`,
            false,
          );
          q.ready.unshift(task.name);
          return;
        }
        const gone = ctx.purged[lease.runner];
        if (gone) {
          t.lostAt = ctx.now();
          ctx.finish(t, 'failed', purgedReason(gone));
          return;
        }
        lost.lose(task.name, `${why}; not retried: it may have run`);
        return;
      }
      if (type === 'START_TO_CLOSE') {
        settleTimeout(ctx, task.name, timeoutMs);
        return;
      }
      ctx.finish(t, 'failed', describeError(err));
    }
  }

  function forget(q: Queue, runner: string): void {
    q.idle = q.idle.filter((l) => l.runner !== runner);
  }
}
