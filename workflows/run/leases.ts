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
 * When the pool's runners are full, a ready task may also be queued behind a busy lease whose
 * last task was short: the runner starts it the moment the running one ends, so short tasks
 * follow each other on a slot without a workflow task in between (the wait is bounded,
 * QUEUE_WAIT_MS; past it nothing has started and the run reserves again).
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
import { QUEUE_MARGIN_MS } from '../../src/run/queued';
import { labelText, requeueTask, reserveTask } from '../../src/run/transitions';
import { checkedSigner, reservationScopeProblem } from '../../src/security/runner-proof';
import { LIMITS, envBytes, type TaskSpec } from '../../src/spec/schema';
import { executionOn, matcher, pokeOn, poolOn } from './activities';
import type { RunContext } from './context';
import { describeError, isApplicationFailure, purgedReason, timeoutType } from './failures';
import type { LostTasks } from './lost';
import { settleOutcome, settleTimeout } from './outcomes';

/** Tasks reserved or running at once in one run (also keeps pending activities far below 2,000). */
export const MAX_TASKS_IN_FLIGHT = 500;
/**
 * A task is queued behind a busy lease only when that lease's last task took at most this long
 * (by its runner's clock): a long task would hold it back while another runner may be free.
 */
const QUEUE_BEHIND_MS = 1_000;
/** How long a queued task waits on its runner for the lease; its start-to-close adds this and a margin. */
const QUEUE_WAIT_MS = 3_000;
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
  /** How long its last task ran (its runner says), when that is known. */
  lastRunMs?: number;
  /**
   * The executions sent on it and not answered yet: the one that runs (or will run) first, and
   * the one queued behind that. Neither: the lease is idle.
   */
  current?: Execution;
  queued?: Execution;
}

/** One execution of a task: `<task>/<attempt>` is how a runner names it. */
interface Execution {
  task: string;
  attempt: number;
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
  /** Leases running one task of this run that a ready task may be queued behind. */
  busy: Lease[];
  reservations: number;
  wanted: number;
  /** Reservations in flight, each in a scope of its own: cancelled once no task waits for them. */
  asking?: { scope: CancellationScope; surplus: boolean; since: number }[];
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
  execute(q: Queue, task: TaskSpec, lease: Lease, queued?: boolean): Promise<void>;
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
        q = { pool: task.pool, runner, driver: task.driver, ready: [], idle: [], busy: [], reservations: 0, wanted: 0 };
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
      q = { pool: task.pool, driver: task.driver, ready: [], idle: [], busy: [], reservations: 0, wanted: 0 };
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
    // No idle lease left, and the pool's runners are full (a reservation has waited a while
    // unanswered): queue ready tasks behind busy leases whose last task was short.
    if (q.ready.length > 0 && q.busy.some(queueable) && saturated(q) && ctx.patches.has('queueOnLease')) {
      for (const lease of q.busy.filter(queueable)) {
        if (q.ready.length === 0 || ctx.tasksInFlight >= MAX_TASKS_IN_FLIGHT) break;
        const name = q.ready.shift() as string;
        ctx.tasksInFlight++;
        ctx.track(() => execute(q, ctx.task(name), lease, true), {
          task: name,
          settled: () => ctx.tasksInFlight--,
        });
      }
    }
    while (q.ready.length > q.wanted && q.reservations < MAX_RESERVATIONS_IN_FLIGHT) {
      // Leases asked for count against the in-flight bound too (reserve() adds to q.wanted at once).
      const room = MAX_TASKS_IN_FLIGHT - ctx.tasksInFlight - q.wanted;
      if (room <= 0) break;
      const want = Math.min(q.ready.length - q.wanted, MAX_LEASES_PER_RESERVATION, room);
      ctx.track(() => reserve(q, want));
    }
    // Nothing left to reserve for (the rest is on leases, or queued behind them): a reservation
    // still out would take a slot, the next one a runner frees, for a run that has no use for it.
    if (q.ready.length === 0 && (q.asking?.length ?? 0) > 0 && ctx.patches.has('queueOnLease')) {
      for (const a of q.asking ?? []) {
        a.surplus = true;
        a.scope.cancel();
      }
    }
  }

  function saturated(q: Queue): boolean {
    const nowMs = Date.now();
    return (q.asking ?? []).some((a) => nowMs - a.since >= options.queueBehindAfter);
  }

  function queueable(lease: Lease): boolean {
    return lease.lastRunMs !== undefined && lease.lastRunMs <= QUEUE_BEHIND_MS;
  }

  /** An execution on the lease was answered (or failed): the lease is idle, busy, or given up. */
  function answered(q: Queue, lease: Lease, exec: Execution, keep: boolean): void {
    if (same(lease.queued, exec)) {
      delete lease.queued;
    } else if (same(lease.current, exec)) {
      delete lease.current;
      const next = lease.queued;
      if (next) {
        // The one queued behind runs now, as far as the run can tell.
        lease.current = next;
        delete lease.queued;
        const t = ctx.taskState(next.task);
        if (t.attempts === next.attempt && t.queuedBehind !== undefined) {
          delete t.queuedBehind;
          t.reason = null;
        }
      }
    }
    q.busy = q.busy.filter((l) => l !== lease);
    if (!keep) return;
    if (!lease.current && !lease.queued) {
      lease.idleSince = Date.now();
      q.idle.push(lease);
    } else if (!q.runner) {
      q.busy.push(lease);
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

  /** One reservation, in a scope of its own: a surplus one is cancelled, and that is no error. */
  async function reserve(q: Queue, want: number): Promise<void> {
    const asking = { scope: new CancellationScope(), surplus: false, since: Date.now() };
    (q.asking ??= []).push(asking);
    try {
      await asking.scope.run(() => reserveSlots(q, want));
    } catch (err) {
      if (!(asking.surplus && isCancellation(err))) throw err;
    } finally {
      q.asking = q.asking.filter((a) => a !== asking);
    }
  }

  async function reserveSlots(q: Queue, want: number): Promise<void> {
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
        const statement = {
          about: 'reservation',
          run: state.id,
          runner: by,
          nonce,
          taskQueue,
          leases: granted,
        } as const;
        // Verified already where the worker decoded it, as a rule (src/codec/proof-check.ts).
        let refused = await ctx.proofs.check(statement, proof, checkedSigner(statement, r));
        if (!refused && ctx.patches.has('reservationScope') && ctx.proofs.enforced()) {
          refused = reservationScopeProblem({
            runner: by,
            taskQueue,
            askedRunner: runner,
            pool: q.pool,
            runnerPool:
              runner === undefined ? (ctx.proofs.poolOf(by) ?? (await ctx.proofs.vouchedPool(by))) : undefined,
          });
        }
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

  async function execute(q: Queue, task: TaskSpec, lease: Lease, queued = false): Promise<void> {
    const t = ctx.taskState(task.name);
    const timeoutMs = task.timeout ?? LIMITS.defaultTimeoutMs;
    const attempt = reserveTask(t, lease.runner);
    delete t.retryAt;
    const since = readySince.get(task.name);
    if (since !== undefined) {
      readySince.delete(task.name);
      ctx.metrics.taskReserved(task.pool, Date.now() - since);
    }
    const behind = queued ? lease.current : undefined;
    // A queued task's start-to-close also covers its wait on the runner (which keeps the task's
    // own timeout from when it starts).
    const runner = executionOn(
      lease.taskQueue,
      `exec/${task.name}/${attempt}`,
      behind ? timeoutMs + QUEUE_WAIT_MS + QUEUE_MARGIN_MS : timeoutMs,
      options,
    );
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
    const exec: Execution = { task: task.name, attempt };
    q.busy = q.busy.filter((l) => l !== lease);
    if (behind) {
      lease.queued = exec;
      t.queuedBehind = behind.task;
      t.reason = `queued on runner "${lease.runner}" behind task "${behind.task}"`;
    } else {
      lease.current = exec;
      // One task at most queued behind this one, and none behind the last (its slot is given back).
      if (!releaseLease && !q.runner) q.busy.push(lease);
    }
    /** Whether the run may use the lease again after this execution. */
    let keepLease = false;
    try {
      const outcome = await runner.executeTask({
        runId: state.id,
        leaseId: lease.id,
        attempt,
        task,
        ...(releaseLease ? { releaseLease } : {}),
        ...(behind ? { queued: true, behind: `${behind.task}/${behind.attempt}`, timeoutMs } : {}),
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
        // Verified already where the worker decoded it, as a rule (src/codec/proof-check.ts).
        const checkedBy = checkedSigner(statement, outcome);
        // The runner's key is known by now (its reservation was checked): no await, as a rule.
        const answer = ctx.proofs.checkKnown(statement, outcome.proof, checkedBy);
        const refused = answer !== undefined ? answer : await ctx.proofs.check(statement, outcome.proof, checkedBy);
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
      keepLease = !releaseLease;
      const ran = Date.parse(outcome.finishedAt) - Date.parse(outcome.startedAt);
      if (Number.isFinite(ran)) lease.lastRunMs = ran;
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
          type === 'SCHEDULE_TO_START'
            ? `no answer in ${formatDuration(options.evictionTimeout)}`
            : queued
              ? `queued behind a task that did not end in ${formatDuration(QUEUE_WAIT_MS)}`
              : 'lease given back';
        // Its task runs long: nothing more is queued behind it until its outcome says how long.
        if (queued) delete lease.lastRunMs;
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
    } finally {
      if (t.attempts === attempt) delete t.queuedBehind;
      answered(q, lease, exec, keepLease);
    }
  }

  function same(a: Execution | undefined, b: Execution): boolean {
    return a !== undefined && a.task === b.task && a.attempt === b.attempt;
  }

  function forget(q: Queue, runner: string): void {
    q.idle = q.idle.filter((l) => l.runner !== runner);
    q.busy = q.busy.filter((l) => l.runner !== runner);
  }
}
