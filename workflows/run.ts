/**
 * One run: a DAG of tasks. Fans out ready tasks, joins on dependencies, and executes each task
 * at most once on a runner.
 *
 * Dispatch goes through slot leases:
 *   reserve  (pool queue: only runners with a free slot poll it; one answer grants 1..n leases)
 *   execute  (the granting runner's own queue, one task per lease)
 * When a task ends, its lease is reused at once for the run's next ready task of the same pool
 * and driver, so a busy run pays for a reservation per slot, not per task. The runner keeps an
 * unused lease only briefly (linger) and refuses, before starting anything, a task on a lease it
 * gave back; the run then reserves again.
 *
 * At most once: a reservation nobody answers times out before anything started and is asked
 * again; an execution that never started (schedule-to-start timeout) goes back to the queue; a
 * started execution whose runner stops heartbeating is `lost`, never started again unless the
 * task is idempotent. A task's timeout is its execution's start-to-close timeout: a server-side
 * timer, which does not trust the runner; the runner learns of it on its next heartbeat and
 * kills the process group.
 *
 * The runner is the source of truth for a lost task: the task is not final, its dependents and
 * the run wait (other branches go on) until the runner, started again, reports how it ended
 * (`taskReport`), or is purged (`runnerPurged`: the task fails), or the run is stopped (the task
 * is cancelled). The runner's registry workflow is told which tasks are lost on it. The run also
 * asks the runner (`askRunner`): an attempt it never received goes back to be dispatched again.
 *
 * A run pinned to a runner (option `runner`, scheduled runs) reserves on that runner's own
 * reservation queue only.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  TimeoutFailure,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
  sleep,
  allHandlersFinished,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  patched,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { FleetLeaseActivities } from '../activities/fleet-lease';
import type { PoolActivities, RegistryActivities, RunnerActivities, TaskLookup } from '../activities/types';
import { advance, allFinal, initialRunState, isFinal, lostTasks, runResult, unstartedTasks } from '../src/dag/engine';
import { formatDuration } from '../src/duration';
import { NON_RETRYABLE_TYPES, RunfleetError } from '../src/errors';
import {
  changegroupWorkflowId,
  groupPrefixes,
  pinnedTaskQueue,
  poolTaskQueue,
  runnerTaskQueue,
  runnerWorkflowId,
} from '../src/ids';
import {
  AdmissionSchema,
  LIMITS,
  envBytes,
  RestartSchema,
  RunInputSchema,
  type Restart,
  type RunOptions,
  type RunSpec,
  type TaskSpec,
} from '../src/spec/schema';
import { validateRunOptions, validateRunSpec } from '../src/spec/validate';
import { scopedValue } from '../src/codec/payload-converter';
import { approvalStatement } from '../src/security/statements';
import type { RunState, TaskOutcome, TaskState } from '../src/types';
import {
  admitSignal,
  approveTaskUpdate,
  inputQuery,
  runEnvQuery,
  releaseSignal,
  runnerPurgedSignal,
  stateQuery,
  stopRunSignal,
  taskReportSignal,
  type RunnerPurgedRequest,
  type StopRunRequest,
  type TaskReport,
} from './messages';
import { taskFoundSignal, taskLostSignal, type LostTaskRef } from './runner-messages';
import { createRunnerProofs } from './runner-proofs';

/** The workflow's argument, as `temporal workflow start --input` takes it. */
export interface RunInput {
  spec: unknown;
  options?: unknown;
  /** Set by `runfleet run restart`: the run restarted and the succeeded tasks it keeps. */
  restart?: unknown;
  /**
   * Set when a changegroup limits how many runs are active: the run stays `queued` until the
   * changegroup workflow (`changegroup/<name>`) sends `admit`, and sends it `release` when it ends.
   */
  admission?: { changegroup: string };
  /** Set by the run itself when it continues as new: where it was. */
  resume?: unknown;
}

/** Where a run continued as new: its state (every task final, pending or lost) and admission. */
export interface RunResume {
  state: RunState;
  admitted: boolean;
}

/**
 * A run stops starting work at this many history events and continues as new once its tasks
 * in flight have settled, so no history reaches Temporal's 10,240-event warning: draining adds
 * at most ~3 events per task in flight (below), plus workflow tasks.
 */
const CONTINUE_AS_NEW_AT_EVENTS = 7_000;
/**
 * Or at this many history bytes (Temporal fails a workflow task whose history passes 50 MiB and
 * refuses gRPC messages over 4 MiB), or when the server suggests it; not before this many events,
 * so a run whose input alone is large still makes progress between two continues.
 */
const CONTINUE_AS_NEW_AT_BYTES = 8 * 1024 * 1024;
const CONTINUE_AS_NEW_MIN_EVENTS = 200;
/** Patch: runs started before history size counted continue as new by event count alone. */
const HISTORY_SIZE_PATCH = 'continue-as-new-on-history-size';
/** A run env at most this large travels in each task's input; a larger one is read by reference. */
const RUN_ENV_INLINE_BYTES = 8 * 1024;
/** Tasks reserved or running at once in one run (also keeps pending activities far below 2,000). */
const MAX_TASKS_IN_FLIGHT = 500;

/** Reservations of one pool and driver in flight at once: enough to reach several runners. */
const MAX_RESERVATIONS_IN_FLIGHT = 8;
/** Leases asked for in one reservation (a runner grants at most this many at once anyway). */
const MAX_LEASES_PER_RESERVATION = 100;

interface Lease {
  id: string;
  runner: string;
  taskQueue: string;
  /** Workflow time (ms) the lease became idle. */
  idleSince: number;
}

/**
 * A question to the runner about a lost task waits this long on the runner's queue (a runner that
 * is away answers when it is back), then is asked again. Failed answers are asked again after
 * LOOKUP_PAUSE_MS, doubling up to this.
 */
const LOOKUP_WAIT_MS = 10 * 60_000;
const LOOKUP_PAUSE_MS = 60_000;
/** Patch: approvals are checked against the operator key (a control activity) before they apply. */
const SIGNED_APPROVALS_PATCH = 'signed-approvals';
/** The operator-key check of approvals: quick, on the control worker. */
const control = proxyActivities<Pick<RegistryActivities, 'verifyApproval'>>({
  startToCloseTimeout: '30s',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

/** Why a task cannot be approved now, or null. */
function approvalProblem(t: TaskState | undefined, task: string): string | null {
  if (!t) return `no task "${task}" in this run`;
  if (!t.approval.required) return `task "${task}" does not need approval`;
  if (t.approval.approvedAt)
    return `task "${task}" was approved by ${t.approval.approvedBy} at ${t.approval.approvedAt}`;
  if (t.status !== 'pending') return `task "${task}" is ${t.status}`;
  return null;
}

/** Patch: runs started before `askRunner` existed replay without it. */
const ASK_RUNNER_PATCH = 'ask-runner-about-lost-tasks';
/**
 * Patch: runs started before runner proofs replay without them. What a runner tells the run
 * (reservation answers, execution results, lookup answers, reports) is verified with its
 * registered signing key (`workflows/runner-proofs.ts`); a message that fails is refused.
 */
const RUNNER_PROOFS_PATCH = 'runner-proofs';
/** A refused reservation answer (someone else answers in a runner's name): reserve again after this. */
const REFUSED_RESERVATION_PAUSE_MS = 5_000;
/** Refusals the run keeps in its state (`refusals`): a forger's flood must not grow it without bound. */
const MAX_REFUSALS_KEPT = 50;

/** A fleet task holds its instance this much longer than its own timeout. */
const FLEET_LEASE_MARGIN_MS = 10 * 60_000;
/** Claims a fleet task makes at most (a claim lost before the start, a lease not taken). */
const FLEET_ROUNDS = 3;
/** Reservations on a claimed instance's runner before the claim is given up (2 s apart). */
const FLEET_RESERVE_ATTEMPTS = 6;
/** A fleet class at its cap: ask again after this, doubling up to the max. */
const FLEET_CAPACITY_WAIT_MS = 5_000;
const FLEET_CAPACITY_WAIT_MAX_MS = 60_000;

/** Ready tasks and idle leases of one pool and driver (or of one runner: a fleet task's). */
interface Queue {
  pool: string;
  /** Reserve on this runner's own queue (a fleet task's claimed instance), not the pool's. */
  runner?: string;
  driver: TaskSpec['driver'];
  ready: string[];
  idle: Lease[];
  reservations: number;
  wanted: number;
}

export async function runWorkflow(input: RunInput): Promise<RunState> {
  const { spec, options, restart, admission, resume } = parseInput(input);
  const now = () => new Date().toISOString();
  const state = resume?.state ?? initialRunState(workflowInfo().workflowId, spec, now(), restart);
  const specs = new Map(spec.tasks.map((t) => [t.name, t] as const));
  const queues = new Map<string, Queue>();
  /** Fleet tasks' queues, by runner: served by runOnFleet, never by schedule(). */
  const fleetQueues = new Map<string, Queue>();
  const dispatched = new Set<string>();
  const inFlight: Promise<void>[] = [];
  let tasksInFlight = 0;
  /** Set when a task ends or is approved: the DAG must be walked again. */
  let dagChanged = true;
  let version = 0;
  const bump = () => void version++;
  /** Runners purged while this run lives: a task still executing there fails when its heartbeat times out. */
  const purged: Record<string, RunnerPurgedRequest> = {};
  /** Claims kept by fleet tasks lost on their instance, released if the task is given back. */
  const lostClaims = new Map<string, { fleet: string; instanceId: string; requestId: string }>();
  /** Signals to runner registries, sent without holding the run; settled before it ends or continues. */
  const notices: Promise<void>[] = [];
  /** Claims and releases of fleet instances (tasks with `fleet`), on the control worker; idempotent. */
  const fleetLease = proxyActivities<FleetLeaseActivities>({
    // A claim may launch an instance and wait for its runner (the fleet's registrationTimeout).
    startToCloseTimeout: '15m',
    // A class at its cap is the run's to wait for (runOnFleet), not the activity's to retry.
    retry: {
      initialInterval: 1_000,
      maximumAttempts: 5,
      nonRetryableErrorTypes: [...NON_RETRYABLE_TYPES, 'CapacityExhausted'],
    },
  });

  /** Verifies what runners say with their registered signing keys (read once per runner). */
  const proofs = createRunnerProofs();
  /** Numbers this run's reservations: the answer signs it, so an old answer cannot stand for a new one. */
  let reservationCount = 0;

  setHandler(stateQuery, () => state);
  // What was submitted, as written (a restart submits it again).
  setHandler(inputQuery, () => ({ spec: (input as RunInput).spec, options: (input as RunInput).options }));
  // A large run env is read by each runner once (runEnvRef), sealed for that runner alone.
  const runEnvSize = envBytes(spec.env);
  const runEnvInline = runEnvSize <= RUN_ENV_INLINE_BYTES;
  setHandler(runEnvQuery, (req) => {
    const runner = String(req?.runner ?? '');
    if (!Object.values(state.tasks).some((t) => t.runner === runner))
      throw ApplicationFailure.create({
        type: 'NotFound',
        message: `runner "${runner}" runs no task of this run`,
        nonRetryable: true,
      });
    // Typed as the env; the payload converter sends the env itself, with the runner's key scope.
    return scopedValue(`runner/${runner}`, spec.env ?? {}) as unknown as Record<string, string>;
  });
  setHandler(
    approveTaskUpdate,
    async (req) => {
      if (patched(SIGNED_APPROVALS_PATCH)) {
        const sig = req.operator as NonNullable<typeof req.operator>;
        const approval = approvalStatement(workflowInfo().workflowId, req.task, req.by, sig);
        try {
          await control.verifyApproval({ approval, signature: sig.signature });
        } catch (err) {
          throw ApplicationFailure.create({
            type: 'Unauthorized',
            message: `approval of task "${req.task}" refused: ${describeError(err)}`,
            nonRetryable: true,
          });
        }
        const again = approvalProblem(state.tasks[req.task], req.task);
        if (again) throw invalidState(again);
      }
      const t = state.tasks[req.task] as TaskState;
      t.approval.approvedBy = req.by;
      t.approval.approvedAt = now();
      dagChanged = true;
      bump();
      return state;
    },
    {
      validator: (req) => {
        const t = state.tasks[req?.task];
        if (!t)
          throw ApplicationFailure.create({
            type: 'NotFound',
            message: `no task "${req?.task}" in this run`,
            nonRetryable: true,
          });
        const problem = approvalProblem(t, req.task);
        if (problem) throw invalidState(problem);
        if (typeof req.by !== 'string' || req.by.length === 0) throw invalidState('an approval names who approves');
        const sig = req.operator;
        if (!sig || typeof sig.at !== 'string' || typeof sig.nonce !== 'string' || typeof sig.signature !== 'string')
          throw ApplicationFailure.create({
            type: 'Unauthorized',
            message: 'an approval must be signed with the operator key (runfleet run approve signs it)',
            nonRetryable: true,
          });
      },
    },
  );

  setHandler(taskReportSignal, async (report) => {
    const problem = reportProblem(report);
    if (problem) {
      // Duplicates and stale attempts are expected (a runner reports until it is heard): ignore them.
      log.info(`ignored task report: ${problem}`, { report });
      return;
    }
    if (patched(RUNNER_PROOFS_PATCH)) {
      const r = report;
      const refused = await proofs.check(
        {
          about: 'report',
          run: state.id,
          task: r.task,
          attempt: r.attempt,
          runner: r.runner,
          outcome: r.outcome,
          note: r.note ?? '',
        },
        r.proof,
      );
      if (refused) {
        refuse(r.runner, r.task, refused);
        return;
      }
      // The task may have moved on while the key was read.
      const late = reportProblem(report);
      if (late) {
        log.info(`ignored task report: ${late}`, { report });
        return;
      }
    }
    const t = state.tasks[report.task] as TaskState;
    const wasLost = t.status === 'lost';
    const heard = `runner "${report.runner}" reported it after it came back${report.note ? ` (${report.note})` : ''}`;
    applyOutcome(t, report.outcome, heard);
    if (wasLost) tellRegistry(taskFoundSignal, report.runner, report.task, report.attempt);
    bump();
  });

  setHandler(runnerPurgedSignal, (req) => {
    const runner = String(req?.runner ?? '');
    const by = String(req?.by ?? 'unknown');
    const reason = String(req?.reason ?? 'purged');
    const gone: RunnerPurgedRequest = { runner, by, reason };
    // Remembered for tasks still executing there: they fail when their heartbeat times out.
    purged[runner] = gone;
    for (const q of queues.values()) forgetRunner(q, runner);
    for (const t of Object.values(state.tasks)) {
      if (t.status === 'lost' && t.runner === runner) finish(t, 'failed', purgedReason(gone));
    }
    bump();
  });

  upsertMemo(restart ? { name: spec.name, restartOf: restart.of } : { name: spec.name });
  upsertSearchAttributes({
    RunfleetGroup: [spec.group],
    RunfleetGroupPath: groupPrefixes(spec.group),
    RunfleetRunName: [spec.name],
    RunfleetPhase: ['queued'],
    RunfleetResult: ['unknown'],
  });
  const setPhase = (phase: RunState['phase']) => {
    state.phase = phase;
    upsertSearchAttributes({ RunfleetPhase: [phase], RunfleetResult: [state.result] });
  };

  // Every task's activities run in this scope, so a stop cancels them without cancelling the run.
  const tasksScope = new CancellationScope();
  let stopRequest: StopRunRequest | null = null;
  setHandler(stopRunSignal, (req) => {
    if (stopRequest || allFinal(state)) return;
    stopRequest = { reason: String(req?.reason ?? 'stopped'), by: String(req?.by ?? 'unknown') };
    tasksScope.cancel();
    bump();
  });

  let admitted = !admission || resume?.admitted === true;
  setHandler(admitSignal, () => {
    admitted = true;
    bump();
  });

  // A run that continued as new asks again about the tasks still lost (the question was dropped).
  for (const name of lostTasks(state)) {
    if (patched(ASK_RUNNER_PATCH)) track(() => askRunner(name));
  }

  try {
    if (!admitted) {
      state.reason = `queued: waiting for a slot of changegroup "${admission?.changegroup}"`;
      await condition(() => admitted || stopRequest !== null);
      state.reason = null;
    }
    if (!stopRequest) {
      state.startedAt ??= now();
      setPhase('running');
    }
    while (!stopRequest) {
      // The DAG only moves when a task ends or is approved: a 10,000-task run scans it then only.
      if (dagChanged) {
        dagChanged = false;
        for (const name of advance(spec, state, now())) {
          if (dispatched.has(name)) continue;
          dispatched.add(name);
          const task = specs.get(name) as TaskSpec;
          if (task.fleet) {
            tasksInFlight++;
            track(
              () => runOnFleet(task, state.tasks[name] as TaskState),
              () => tasksInFlight--,
            );
          } else {
            queueOf(task).ready.push(name);
          }
        }
      }
      for (const q of queues.values()) schedule(q);
      // A reservation still out does not hold the run: its leases would only lapse.
      if (tasksInFlight === 0 && allFinal(state)) break;
      if (draining() && tasksInFlight === 0) {
        // Every task is final, pending or lost (waiting for its runner, which reports to the
        // workflow id, so to the next run): nothing is lost by starting a fresh history. A
        // reservation still out is dropped; the runner gives its leases back on eviction.
        await condition(allHandlersFinished);
        await Promise.allSettled(notices);
        const next: RunInput = { ...(input as RunInput), resume: { state, admitted } satisfies RunResume };
        await continueAsNew<typeof runWorkflow>(next);
      }
      const seen = version;
      await condition(() => version !== seen);
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // Cancelled through Temporal (the Web UI, `temporal workflow cancel`; `runfleet run cancel` stops):
    // record the stop, then end as Temporal's cancelled.
    await CancellationScope.nonCancellable(async () => {
      await settleStopped('cancelled through Temporal');
      await release();
      await Promise.allSettled(notices);
    });
    throw err;
  }
  const stop = stopRequest as StopRunRequest | null;
  if (stop) {
    await settleStopped(`stopped by ${stop.by}: ${stop.reason}`);
  } else {
    state.result = runResult(spec, state, false);
    state.finishedAt = now();
    setPhase('finished');
  }
  await release();
  await Promise.allSettled(notices);
  return state;

  /** Gives the run's changegroup slot back (a changegroup that is gone has nothing to give back to). */
  async function release(): Promise<void> {
    if (!admission) return;
    try {
      await getExternalWorkflowHandle(changegroupWorkflowId(admission.changegroup)).signal(releaseSignal, {
        runId: state.id,
        result: state.result,
      });
    } catch {
      // Not found: the changegroup ended; no slot to give back.
    }
  }

  // --- scheduling, closed over the run's state ----------------------------------------------

  /** Lets every task settle (runners confirm the kill), then records the run as stopped. */
  async function settleStopped(reason: string): Promise<void> {
    await Promise.allSettled(inFlight);
    for (const name of unstartedTasks(state))
      finish(state.tasks[name] as TaskState, 'cancelled', 'the run was stopped');
    // Nothing to kill: the runner is silent. The run stops waiting for its report.
    for (const name of lostTasks(state)) {
      const t = state.tasks[name] as TaskState;
      finish(t, 'cancelled', `${reason}; the task was lost on runner "${t.runner}", nothing to kill`);
      tellRegistry(taskFoundSignal, t.runner ?? '', name, t.attempts);
    }
    state.reason = reason;
    state.result = 'stopped';
    state.finishedAt = now();
    const anyStarted = Object.values(state.tasks).some((t) => t.attempts > 0);
    setPhase(anyStarted ? 'finished' : 'cancelled');
  }

  function queueOf(task: TaskSpec): Queue {
    // A pinned run reserves on its runner's queues whatever the task's pool: one queue a driver.
    const key = options.runner ? task.driver : `${task.pool}\u0000${task.driver}`;
    let q = queues.get(key);
    if (!q) {
      q = { pool: task.pool, driver: task.driver, ready: [], idle: [], reservations: 0, wanted: 0 };
      queues.set(key, q);
    }
    return q;
  }

  function draining(): boolean {
    const info = workflowInfo();
    if (info.historyLength >= CONTINUE_AS_NEW_AT_EVENTS) return true;
    // Large payloads fill a history long before its event count does: the server's suggestion
    // (or CONTINUE_AS_NEW_AT_BYTES) counts too, once the run has made some progress here.
    const big = info.continueAsNewSuggested || info.historySize >= CONTINUE_AS_NEW_AT_BYTES;
    return big && info.historyLength >= CONTINUE_AS_NEW_MIN_EVENTS && patched(HISTORY_SIZE_PATCH);
  }

  /** Ready tasks onto idle leases; reservations for the rest. */
  function schedule(q: Queue): void {
    if (draining()) return; // finish what runs, then continue as new
    const nowMs = Date.now();
    // A lease idle longer than half the runner's linger may be gone already: forget it.
    q.idle = q.idle.filter((l) => nowMs - l.idleSince < options.leaseLinger / 2);
    while (q.ready.length > 0 && q.idle.length > 0 && tasksInFlight < MAX_TASKS_IN_FLIGHT) {
      const lease = q.idle.shift() as Lease;
      const name = q.ready.shift() as string;
      tasksInFlight++;
      track(
        () => execute(q, specs.get(name) as TaskSpec, state.tasks[name] as TaskState, lease),
        () => tasksInFlight--,
      );
    }
    while (q.ready.length > q.wanted && q.reservations < MAX_RESERVATIONS_IN_FLIGHT) {
      // Leases asked for count against the in-flight bound too (reserve() adds to q.wanted at once).
      const room = MAX_TASKS_IN_FLIGHT - tasksInFlight - q.wanted;
      if (room <= 0) break;
      const want = Math.min(q.ready.length - q.wanted, MAX_LEASES_PER_RESERVATION, room);
      track(() => reserve(q, want));
    }
  }

  function track(start: () => Promise<void>, settled?: () => void): void {
    inFlight.push(
      tasksScope.run(start).finally(() => {
        settled?.();
        bump();
      }),
    );
  }

  async function reserve(q: Queue, want: number): Promise<void> {
    q.reservations++;
    q.wanted += want;
    // A fleet task's claimed runner, or the runner the whole run is pinned to; else the pool.
    const runner = q.runner ?? options.runner;
    const pool = proxyActivities<PoolActivities>({
      taskQueue: runner ? pinnedTaskQueue(runner, q.driver) : poolTaskQueue(q.pool, q.driver),
      // Nobody answered in time: ask again (nothing has started, so this is always safe).
      scheduleToStartTimeout: options.reservationTimeout,
      // Granting leases is bookkeeping on the runner: seconds at most.
      startToCloseTimeout: 10_000,
      retry: { initialInterval: 200, maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
    });
    try {
      const nonce = `${workflowInfo().runId}/${++reservationCount}`;
      const r = await pool.reserveSlots({ runId: state.id, driver: q.driver, want, nonce });
      if (patched(RUNNER_PROOFS_PATCH)) {
        const { runner: by, taskQueue, leases, proof } = r;
        const refused = await proofs.check(
          { about: 'reservation', run: state.id, runner: by, nonce, taskQueue, leases },
          proof,
        );
        if (refused) {
          // Its leases are not used (they lapse on the runner, if it is one); reserve again soon.
          refuse(by, null, refused);
          for (const name of q.ready) (state.tasks[name] as TaskState).reason = `${refused}; reserving again`;
          await sleep(REFUSED_RESERVATION_PAUSE_MS);
          return;
        }
      }
      const idleSince = Date.now();
      for (const id of r.leases) q.idle.push({ id, runner: r.runner, taskQueue: r.taskQueue, idleSince });
      for (const name of q.ready) (state.tasks[name] as TaskState).reason = null;
    } catch (err) {
      if (isCancellation(err)) throw err;
      const why =
        timeoutType(err) === 'SCHEDULE_TO_START'
          ? `none answered in ${formatDuration(options.reservationTimeout)}`
          : describeError(err);
      const driver = q.driver === 'process' ? '' : ` with the ${q.driver} driver`;
      const reason = options.runner
        ? `waiting for runner "${options.runner}"${driver}, which this run is pinned to (${why}; asking again)`
        : `waiting for a runner of pool "${q.pool}"${driver} (${why}; asking again)`;
      for (const name of q.ready) (state.tasks[name] as TaskState).reason = reason;
    } finally {
      q.reservations--;
      q.wanted -= want;
    }
  }

  async function execute(q: Queue, task: TaskSpec, t: TaskState, lease: Lease): Promise<void> {
    const timeoutMs = task.timeout ?? LIMITS.defaultTimeoutMs;
    t.status = 'reserved';
    t.runner = lease.runner;
    t.attempts += 1;
    t.reason = null;
    const attempt = t.attempts;
    const runner = proxyActivities<RunnerActivities>({
      taskQueue: lease.taskQueue,
      // Readable in `temporal workflow describe`: which task, which attempt.
      activityId: `exec/${task.name}/${attempt}`,
      // The lease holds the slot this long; past it the runner has given it back.
      scheduleToStartTimeout: options.evictionTimeout,
      // The task's timeout, enforced by the server.
      startToCloseTimeout: timeoutMs,
      heartbeatTimeout: options.heartbeatTimeout,
      // At most once: the scheduler never starts a task twice by itself.
      retry: { maximumAttempts: 1 },
      cancellationType: 'WAIT_CANCELLATION_COMPLETED',
    });
    try {
      const outcome = await runner.executeTask({
        runId: state.id,
        leaseId: lease.id,
        attempt,
        task,
        ...(runEnvInline ? { runEnv: spec.env ?? {} } : { runEnvRef: { bytes: runEnvSize } }),
      });
      if (reportedMeanwhile(t, attempt)) return;
      if (patched(RUNNER_PROOFS_PATCH)) {
        const refused = await proofs.check(
          {
            about: 'execution',
            run: state.id,
            task: task.name,
            attempt,
            runner: lease.runner,
            lease: lease.id,
            outcome,
          },
          outcome.proof,
        );
        if (reportedMeanwhile(t, attempt)) return;
        if (refused) {
          // At most once: this result is not the runner's, so the task may run there (someone
          // completed its execution by id) or may never have reached it (someone polled its
          // queue). Neither success nor a retry: lost, and the runner is asked, as for a silent one.
          refuse(lease.runner, task.name, refused);
          markLost(t, task.name, `${refused}; the attempt is lost: asking runner "${lease.runner}" what it knows`);
          track(() => askRunner(task.name));
          return;
        }
      }
      applyOutcome(t, outcome, null);
      // The runner keeps the lease for our next task.
      q.idle.push({ ...lease, idleSince: Date.now() });
    } catch (err) {
      // The runner came back and reported before this execution timed out: its outcome stands.
      if (reportedMeanwhile(t, attempt)) return;
      if (isCancellation(err)) {
        if (!isFinal(t.status)) {
          finish(t, 'cancelled', `the run was stopped; runner "${lease.runner}" killed the task`);
        }
        return;
      }
      const type = timeoutType(err);
      if (type === 'SCHEDULE_TO_START' || isApplicationFailure(err, 'LeaseExpired')) {
        // Never started: back to the queue. Forget the runner's other leases if it is silent.
        if (type === 'SCHEDULE_TO_START') forgetRunner(q, lease.runner);
        requeue(
          q,
          t,
          task.name,
          `runner "${lease.runner}" did not take the task (${type === 'SCHEDULE_TO_START' ? `no answer in ${formatDuration(options.evictionTimeout)}` : 'lease given back'}); reserving again`,
          true,
        );
        return;
      }
      if (type === 'HEARTBEAT') {
        forgetRunner(q, lease.runner);
        const why = `runner "${lease.runner}" stopped heartbeating (silent for ${formatDuration(options.heartbeatTimeout)})`;
        if (task.idempotent && t.attempts < options.maxAttempts) {
          requeue(
            q,
            t,
            task.name,
            `${why}; the task is idempotent: starting it again (attempt ${t.attempts + 1} of ${options.maxAttempts})`,
            false,
          );
          return;
        }
        const gone = purged[lease.runner];
        if (gone) {
          t.lostAt = now();
          finish(t, 'failed', purgedReason(gone));
          return;
        }
        markLost(t, task.name, `${why}; not retried: it may have run`);
        if (patched(ASK_RUNNER_PATCH)) track(() => askRunner(task.name));
        return;
      }
      if (type === 'START_TO_CLOSE') {
        finish(t, 'failed', `timed out after ${formatDuration(timeoutMs)}; the runner kills the process group`);
        return;
      }
      finish(t, 'failed', describeError(err));
    }
  }

  /** The queue of one fleet runner and driver: its idle leases serve the run's later tasks there. */
  function runnerQueue(runner: string, task: TaskSpec): Queue {
    const key = `${runner}\u0000${task.driver}`;
    let q = fleetQueues.get(key);
    if (!q) {
      q = { pool: task.pool, runner, driver: task.driver, ready: [], idle: [], reservations: 0, wanted: 0 };
      fleetQueues.set(key, q);
    }
    return q;
  }

  /**
   * A fleet task: claims an instance of its resource class (the fleet launches one when none is
   * idle and waits for its runner), reserves that runner's own queue, tells the fleet the task
   * starts (refused once the claim is lost: nothing runs on an instance being terminated), runs
   * it, and releases the instance. A task lost there keeps its claim until its lease runs out.
   */
  async function runOnFleet(task: TaskSpec, t: TaskState): Promise<void> {
    const fleet = task.fleet as NonNullable<TaskSpec['fleet']>;
    const where = `fleet "${fleet.name}" class "${fleet.class}"`;
    const leaseMs = (task.timeout ?? LIMITS.defaultTimeoutMs) + FLEET_LEASE_MARGIN_MS;
    let capacityWaitMs = FLEET_CAPACITY_WAIT_MS;
    for (let round = 1; round <= FLEET_ROUNDS; round++) {
      const requestId = `${state.id}/${task.name}/${round}`;
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
          } catch (stopped) {
            if (!isCancellation(stopped)) throw stopped;
            if (!isFinal(t.status))
              finish(t, 'cancelled', `the run was stopped while waiting for an instance of ${where}`);
            return;
          }
          capacityWaitMs = Math.min(capacityWaitMs * 2, FLEET_CAPACITY_WAIT_MAX_MS);
          round--;
          continue;
        }
        if (isCancellation(err)) finish(t, 'cancelled', `the run was stopped while claiming an instance of ${where}`);
        else finish(t, 'failed', `no instance of ${where}: ${describeError(err)}`);
        return;
      }
      const hold = { fleet: fleet.name, instanceId: got.instanceId, requestId };
      const q = runnerQueue(got.runner, task);
      let keepClaim = false;
      try {
        t.reason = `instance ${got.instanceId} of ${where} claimed; reserving its runner "${got.runner}"`;
        // The run's previous task there may have left its lease lingering: use it. Else reserve;
        // a slot may be held a moment longer by another run's lingering lease.
        q.idle = q.idle.filter((l) => Date.now() - l.idleSince < options.leaseLinger / 2);
        q.ready = [task.name]; // so a failed reservation says why on the task
        for (let i = 0; i < FLEET_RESERVE_ATTEMPTS && q.idle.length === 0; i++) {
          if (i > 0) await sleep(2_000);
          await reserve(q, 1);
        }
        q.ready = [];
        const lease = q.idle.shift();
        if (!lease) {
          finish(
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
        await execute(q, task, t, lease);
        // Lost: its runner may still be running it; the claim stays until the lease runs out.
        if (t.status === 'lost') {
          keepClaim = true;
          lostClaims.set(task.name, hold);
        }
        // `pending`: execute() put it back (never started, or an idempotent retry): claim again.
        if (t.status !== 'pending') return;
      } catch (err) {
        if (!isCancellation(err)) throw err;
        if (!isFinal(t.status)) finish(t, 'cancelled', `the run was stopped on instance ${got.instanceId} of ${where}`);
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
    finish(t, 'failed', `${where}: no instance held the task after ${FLEET_ROUNDS} claims`);
  }

  /**
   * A lost task: asks its runner what it knows of this attempt (`lookupTask` on its own queue).
   * The runner records every execution before starting it, so its answer is the truth:
   * - never received (the server handed the task out, the poll response never arrived): it
   *   refuses that attempt from now on, and the task is dispatched again as a new attempt. It
   *   never ran, so at most once holds;
   * - ended there (its completion did not reach the server): that outcome settles the task;
   * - recorded (running, or being reported): the runner's report settles it.
   * No answer in LOOKUP_WAIT_MS (the runner is away): asked again; a runner that comes back
   * answers the waiting question first thing. Not counted in flight: it never holds the run.
   */
  async function askRunner(name: string): Promise<void> {
    const t = state.tasks[name] as TaskState;
    const attempt = t.attempts;
    const runner = t.runner;
    if (runner === null) return;
    const stillLost = () => t.status === 'lost' && t.attempts === attempt && t.runner === runner;
    let pause = LOOKUP_PAUSE_MS;
    try {
      for (let round = 1; stillLost(); round++) {
        const ask = proxyActivities<RunnerActivities>({
          taskQueue: runnerTaskQueue(runner),
          activityId: `lookup/${name}/${attempt}/${round}`,
          scheduleToStartTimeout: LOOKUP_WAIT_MS,
          startToCloseTimeout: 30_000,
          retry: { maximumAttempts: 1 },
        });
        let answer: TaskLookup;
        try {
          answer = await ask.lookupTask({ runId: state.id, task: name, attempt });
        } catch (err) {
          if (isCancellation(err)) throw err;
          if (timeoutType(err) !== 'SCHEDULE_TO_START') {
            // A runner that cannot answer (one older than the question): ask again later.
            log.info(`runner "${runner}" did not answer about task "${name}": ${describeError(err)}`);
            await sleep(pause);
            pause = Math.min(pause * 2, LOOKUP_WAIT_MS);
          }
          continue;
        }
        if (patched(RUNNER_PROOFS_PATCH)) {
          const refused = await proofs.check(
            {
              about: 'lookup',
              run: state.id,
              task: name,
              attempt,
              runner,
              known: answer.known,
              outcome: answer.known ? answer.outcome : null,
            },
            answer.proof,
          );
          if (!stillLost()) return;
          if (refused) {
            refuse(runner, name, refused);
            t.reason = `${refused}; asking again in ${formatDuration(pause)}`;
            await sleep(pause);
            pause = Math.min(pause * 2, LOOKUP_WAIT_MS);
            continue;
          }
        }
        if (!stillLost()) return;
        if (!answer.known) {
          giveBack(t, name, runner, attempt);
        } else if (answer.outcome) {
          applyOutcome(t, answer.outcome, `runner "${runner}" told it after the server lost track of it`);
          tellRegistry(taskFoundSignal, runner, name, attempt);
        }
        return;
      }
    } catch (err) {
      // The run was stopped: it settles its lost tasks itself.
      if (!isCancellation(err)) throw err;
    }
  }

  /** A lost attempt its runner never received: the task is dispatched again (a new attempt). */
  function giveBack(t: TaskState, name: string, runner: string, attempt: number): void {
    t.status = 'pending';
    t.runner = null;
    delete t.lostAt;
    t.reason = `runner "${runner}" never received attempt ${attempt} (the server handed it out, the runner has no record of it): dispatching it again`;
    dispatched.delete(name);
    dagChanged = true;
    tellRegistry(taskFoundSignal, runner, name, attempt);
    const claim = lostClaims.get(name);
    if (claim) {
      lostClaims.delete(name);
      notices.push(
        CancellationScope.nonCancellable(() => fleetLease.releaseFleetRunner(claim)).catch((err: unknown) =>
          log.info(`claim on ${claim.instanceId} not released: ${describeError(err)}`),
        ),
      );
    }
  }

  function requeue(q: Queue, t: TaskState, name: string, reason: string, neverStarted: boolean): void {
    t.status = 'pending';
    t.runner = null;
    if (neverStarted) t.attempts -= 1;
    t.reason = reason;
    q.ready.unshift(name);
  }

  function forgetRunner(q: Queue, runner: string): void {
    q.idle = q.idle.filter((l) => l.runner !== runner);
  }

  /**
   * Lost: not final and not retried. Dependents wait for the runner to report (or be purged);
   * its registry is told, without holding the run.
   */
  function markLost(t: TaskState, name: string, reason: string): void {
    t.status = 'lost';
    t.lostAt = now();
    t.reason = reason;
    tellRegistry(taskLostSignal, t.runner ?? '', name, t.attempts);
  }

  /** A completion, from the execution activity or from a runner's report (`heard` says so). */
  function applyOutcome(t: TaskState, outcome: TaskOutcome, heard: string | null): void {
    t.startedAt = outcome.startedAt;
    t.exitCode = outcome.exitCode;
    if (outcome.exitCode === 0) {
      finish(t, 'success', heard, outcome.finishedAt);
      return;
    }
    // A runner that found the task's processes gone knows no step (failedStep null).
    const failure =
      outcome.failedStep === null && heard !== null
        ? `exited with code ${outcome.exitCode}`
        : `step ${(outcome.failedStep ?? 0) + 1} exited with code ${outcome.exitCode}`;
    finish(t, 'failed', heard ? `${failure}; ${heard}` : failure, outcome.finishedAt);
  }

  /** True when a report settled this attempt while its execution activity was still out. */
  function reportedMeanwhile(t: TaskState, attempt: number): boolean {
    return t.attempts !== attempt || t.status !== 'reserved';
  }

  /**
   * A message a runner's signing key does not verify: not applied, and said so in the run's state
   * (`refusals`, and the task's reason while it is not final) and in the worker's log.
   */
  function refuse(runner: string, task: string | null, message: string): void {
    log.warn(message, { runner, task });
    const refusals = (state.refusals ??= []);
    refusals.push({ at: now(), runner, task, message });
    if (refusals.length > MAX_REFUSALS_KEPT) refusals.splice(0, refusals.length - MAX_REFUSALS_KEPT);
    const t = task === null ? undefined : state.tasks[task];
    if (t && !isFinal(t.status)) t.reason = message;
    bump();
  }

  /** Why a report is ignored, or null when it applies. */
  function reportProblem(r: TaskReport | undefined): string | null {
    if (!r || typeof r.task !== 'string') return 'no task named';
    const t = state.tasks[r.task];
    if (!t) return `no task "${r.task}" in this run`;
    const o = r.outcome as Partial<TaskOutcome> | undefined;
    if (!o || typeof o.exitCode !== 'number' || typeof o.startedAt !== 'string' || typeof o.finishedAt !== 'string')
      return `task "${r.task}": the report has no outcome {exitCode, startedAt, finishedAt}`;
    if (r.attempt !== t.attempts)
      return `task "${r.task}": attempt ${r.attempt} is not the current one (${t.attempts})`;
    if (r.runner !== t.runner) return `task "${r.task}": runner "${r.runner}" does not run it (${t.runner ?? 'none'})`;
    if (t.status !== 'lost' && t.status !== 'reserved' && t.status !== 'running')
      return `task "${r.task}" is ${t.status} already`;
    return null;
  }

  /**
   * Tells a runner's registry workflow about a task of this run (lost, or found again). Not
   * awaited here; a runner without a registry (in-process test runners) has nothing to tell.
   */
  function tellRegistry(signal: typeof taskLostSignal, runner: string, task: string, attempt: number): void {
    const ref: LostTaskRef = { runWorkflowId: workflowInfo().workflowId, task, attempt };
    notices.push(
      CancellationScope.nonCancellable(() =>
        getExternalWorkflowHandle(runnerWorkflowId(runner)).signal(signal, ref),
      ).catch((err: unknown) =>
        log.info(`runner registry ${runnerWorkflowId(runner)} not told: ${describeError(err)}`),
      ),
    );
  }

  function finish(t: TaskState, status: TaskState['status'], reason: string | null, at?: string): void {
    dagChanged = true;
    t.status = status;
    t.reason = reason;
    t.finishedAt = at ?? now();
  }
}

interface ParsedInput {
  spec: RunSpec;
  options: RunOptions;
  restart?: Restart;
  admission?: { changegroup: string };
  resume?: RunResume;
}

function parseInput(input: unknown): ParsedInput {
  try {
    const parsed = RunInputSchema.safeParse(input);
    if (!parsed.success) {
      throw new RunfleetError(
        'InvalidWorkflowInput',
        'runWorkflow takes one argument {"spec": <run spec>, "options"?: {...}}; got ' + describeValue(input),
      );
    }
    const spec = validateRunSpec(parsed.data.spec);
    const options = validateRunOptions(parsed.data.options);
    let admission: ParsedInput['admission'];
    if (parsed.data.admission !== undefined) {
      const a = AdmissionSchema.safeParse(parsed.data.admission);
      if (!a.success)
        throw new RunfleetError('InvalidWorkflowInput', 'invalid admission: {"changegroup": "<name>"} expected');
      admission = a.data;
    }
    // Written by this workflow when it continues as new, never by a user: a direct start that
    // carries one (forged task states, an admission it never had) is refused.
    if (parsed.data.resume !== undefined && !workflowInfo().continuedFromExecutionRunId) {
      throw new RunfleetError(
        'InvalidWorkflowInput',
        'invalid resume: it is set by the run itself when it continues as new, never by a start',
      );
    }
    const resume = parsed.data.resume as RunResume | undefined;
    if (parsed.data.restart === undefined) return { spec, options, admission, resume };
    const restart = RestartSchema.safeParse(parsed.data.restart);
    if (!restart.success) {
      throw new RunfleetError(
        'InvalidWorkflowInput',
        `invalid restart: ${restart.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    const unknown = Object.keys(restart.data.keep).filter((name) => !spec.tasks.some((t) => t.name === name));
    if (unknown.length > 0) {
      throw new RunfleetError(
        'InvalidWorkflowInput',
        `invalid restart: kept tasks not in the spec: ${unknown.join(', ')}`,
      );
    }
    return { spec, options, restart: restart.data, admission, resume };
  } catch (err) {
    // Bad input fails the workflow at once; a workflow task retrying forever helps nobody.
    if (err instanceof RunfleetError) {
      throw ApplicationFailure.create({
        type: err.code,
        message: err.message,
        nonRetryable: true,
        details: [err.details ?? null],
      });
    }
    throw ApplicationFailure.create({ type: 'InvalidWorkflowInput', message: describeError(err), nonRetryable: true });
  }
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 120 ? text.slice(0, 117) + '...' : text;
}

function purgedReason(p: RunnerPurgedRequest): string {
  return `runner "${p.runner}" was purged by ${p.by}: ${p.reason}`;
}

function invalidState(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'InvalidState', message, nonRetryable: true });
}

/** 'SCHEDULE_TO_START' | 'START_TO_CLOSE' | 'HEARTBEAT' | 'SCHEDULE_TO_CLOSE', or null. */
function timeoutType(err: unknown): string | null {
  if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure) return err.cause.timeoutType ?? null;
  return null;
}

function isApplicationFailure(err: unknown, type: string): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === type;
}

function describeError(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  if (err instanceof CancelledFailure) return 'cancelled';
  return err instanceof Error ? err.message : String(err);
}
