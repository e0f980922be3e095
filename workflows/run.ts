/**
 * One run: a DAG of tasks. Fans out ready tasks, joins on dependencies, and executes each task
 * at most once on a runner. This function wires the run's messages to its parts:
 *
 * - `src/dag/engine.ts`: which tasks are ready, skipped, and the run's result (pure);
 * - `src/run/transitions.ts`: every change of a task's status, and which may follow which (pure);
 * - `run/leases.ts`: the lease scheduler (reserve slots on a pool, execute on the granting runner);
 * - `run/fleet.ts`: tasks on an EC2 fleet's instances;
 * - `run/lost.ts`: the lost-task protocol (the runner is the source of truth);
 * - `run/outcomes.ts`: outcomes, timeouts and retries;
 * - `run/input.ts`: the argument, checked where it enters; `run-messages.ts`: the run's messages.
 *
 * A lost task is not final: its dependents and the run wait (other branches go on) until its
 * runner, started again, reports how it ended (`taskReport`), or is purged (`runnerPurged`: the
 * task fails), or the run is stopped (the task is cancelled).
 *
 * A run pinned to a runner (option `runner`, scheduled runs) reserves on that runner's own
 * reservation queue only.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  setHandler,
  allHandlersFinished,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributePair } from '@temporalio/common';
import { allFinal, initialRunState, lostTasks, runResult, unstartedTasks } from '../src/dag/engine';
import { changegroupWorkflowId, groupPrefixes } from '../src/ids';
import { scopedValue } from '../src/codec/payload-converter';
import { approvalProblem, cancelProblem, reportProblem } from '../src/run/transitions';
import { RUN_SA } from '../src/search-attributes';
import { approvalStatement } from '../src/security/statements';
import type { RunState, TaskState } from '../src/types';
import {
  admitSignal,
  approveTaskUpdate,
  cancelTaskUpdate,
  inputQuery,
  runEnvQuery,
  releaseSignal,
  runnerPurgedSignal,
  stateQuery,
  stopRunSignal,
  taskReportSignal,
  type RunnerPurgedRequest,
  type StopRunRequest,
} from './run-messages';
import { taskFoundSignal } from './runner-messages';
import { createRunnerProofs } from './runner-proofs';
import { control } from './run/activities';
import { createRunContext } from './run/context';
import { describeError, invalidState, notFound, purgedReason } from './run/failures';
import { runOnFleet } from './run/fleet';
import { parseInput, type RunInput, type RunResume } from './run/input';
import { createLeases } from './run/leases';
import { createLostTasks } from './run/lost';
import { runPatches } from './run/patches';
import { settleOutcome } from './run/outcomes';

export type { RunInput, RunResume } from './run/input';

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

/** Two search attribute values alike (a keyword list item by item). */
function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  return a === b;
}

export async function runWorkflow(input: RunInput): Promise<RunState> {
  const { spec, options, restart, admission, resume, gate } = parseInput(input);
  const patches = runPatches(gate);
  const state = resume?.state ?? initialRunState(workflowInfo().workflowId, spec, new Date().toISOString(), restart);
  // Every task's work runs in this scope (each task in a child scope of its own), so a stop
  // cancels it without cancelling the run.
  const tasksScope = new CancellationScope();
  const run = createRunContext({
    spec,
    options,
    state,
    proofs: createRunnerProofs(patches),
    patches,
    tasksScope,
    draining,
  });
  const { ctx } = run;
  const lost = createLostTasks(ctx);
  const leases = createLeases(ctx, lost);

  setHandler(stateQuery, () => state);
  // What was submitted, as written (a restart submits it again).
  setHandler(inputQuery, () => ({ spec: input.spec, options: input.options }));
  // A large run env is read by each runner once, sealed for that runner alone.
  setHandler(runEnvQuery, (req) => {
    const runner = String(req?.runner ?? '');
    if (!Object.values(state.tasks).some((t) => t.runner === runner))
      throw notFound(`runner "${runner}" runs no task of this run`);
    // Typed as the env; the payload converter sends the env itself, with the runner's key scope.
    return scopedValue(`runner/${runner}`, spec.env ?? {}) as unknown as Record<string, string>;
  });
  setHandler(
    approveTaskUpdate,
    async (req) => {
      if (ctx.patches.has('signedApprovals')) {
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
      const t = ctx.taskState(req.task);
      t.approval.approvedBy = req.by;
      t.approval.approvedAt = ctx.now();
      ctx.taskChanged(req.task);
      ctx.bump();
      return state;
    },
    {
      validator: (req) => {
        if (!state.tasks[req?.task]) throw notFound(`no task "${req?.task}" in this run`);
        const problem = approvalProblem(state.tasks[req.task], req.task);
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
  setHandler(
    cancelTaskUpdate,
    (req) => {
      cancelTask(req.task, req.by, req.reason);
      ctx.bump();
      return state;
    },
    {
      validator: (req) => {
        if (typeof req?.task !== 'string' || !state.tasks[req.task])
          throw notFound(`no task "${req?.task}" in this run`);
        const problem = cancelProblem(state.tasks[req.task], req.task);
        if (problem) throw invalidState(problem);
        if (typeof req.by !== 'string' || req.by.length === 0) throw invalidState('a cancel names who cancels');
        if (typeof req.reason !== 'string') throw invalidState('a cancel gives a reason (may be empty)');
      },
    },
  );

  setHandler(taskReportSignal, async (report) => {
    const problem = reportProblem(state, report);
    if (problem) {
      // Duplicates and stale attempts are expected (a runner reports until it is heard): ignore them.
      log.info(`ignored task report: ${problem}`, { report });
      return;
    }
    if (ctx.patches.has('runnerProofs')) {
      const r = report;
      const refused = await ctx.proofs.check(
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
        ctx.refuse(r.runner, r.task, refused);
        return;
      }
      // The task may have moved on while the key was read.
      const late = reportProblem(state, report);
      if (late) {
        log.info(`ignored task report: ${late}`, { report });
        return;
      }
    }
    const wasLost = ctx.taskState(report.task).status === 'lost';
    const heard = `runner "${report.runner}" reported it after it came back${report.note ? ` (${report.note})` : ''}`;
    settleOutcome(ctx, report.task, report.outcome, heard);
    if (wasLost) ctx.tellRegistry(taskFoundSignal, report.runner, report.task, report.attempt);
    ctx.bump();
  });

  setHandler(runnerPurgedSignal, (req) => {
    const gone: RunnerPurgedRequest = {
      runner: String(req?.runner ?? ''),
      by: String(req?.by ?? 'unknown'),
      reason: String(req?.reason ?? 'purged'),
    };
    // Remembered for tasks still executing there: they fail when their heartbeat times out.
    ctx.purged[gone.runner] = gone;
    leases.forgetRunner(gone.runner);
    for (const t of Object.values(state.tasks)) {
      if (t.status === 'lost' && t.runner === gone.runner) ctx.finish(t, 'failed', purgedReason(gone));
    }
    ctx.bump();
  });

  const memo = restart ? { name: spec.name, restartOf: restart.of } : { name: spec.name };
  // Runs from before this patch upsert their memo and every search attribute here, then the phase
  // at each change; now only what differs from what the start (or an earlier upsert) set.
  const upsertOnlyChanges = ctx.patches.has('fewerEvents');
  if (!upsertOnlyChanges) {
    upsertMemo(memo);
    upsertSearchAttributes({
      [RUN_SA.group.name]: [spec.group],
      [RUN_SA.groupPath.name]: groupPrefixes(spec.group),
      [RUN_SA.runName.name]: [spec.name],
      [RUN_SA.phase.name]: ['queued'],
      [RUN_SA.result.name]: ['unknown'],
    });
  }
  const setPhase = (phase: RunState['phase']) => {
    state.phase = phase;
    if (upsertOnlyChanges) {
      upsertChanges([
        { key: RUN_SA.phase, value: phase },
        { key: RUN_SA.result, value: state.result },
      ]);
    } else {
      upsertSearchAttributes({ [RUN_SA.phase.name]: [phase], [RUN_SA.result.name]: [state.result] });
    }
    if (phase === 'finished' || phase === 'cancelled') ctx.metrics.runEnded(state);
  };

  let stopRequest: StopRunRequest | null = null;
  setHandler(stopRunSignal, (req) => {
    if (stopRequest || allFinal(state)) return;
    stopRequest = { reason: String(req?.reason ?? 'stopped'), by: String(req?.by ?? 'unknown') };
    tasksScope.cancel();
    ctx.bump();
  });

  let admitted = !admission || resume?.admitted === true;
  setHandler(admitSignal, () => {
    admitted = true;
    ctx.bump();
  });

  if (upsertOnlyChanges) {
    const given = workflowInfo().memo ?? {};
    if (Object.entries(memo).some(([key, value]) => given[key] !== value)) upsertMemo(memo);
    // A run admitted at once is running from this workflow task on: `runfleet run submit` starts
    // it so, and a continued run keeps its attributes, so neither upserts anything here.
    upsertChanges([
      { key: RUN_SA.group, value: spec.group },
      { key: RUN_SA.groupPath, value: groupPrefixes(spec.group) },
      { key: RUN_SA.runName, value: spec.name },
      { key: RUN_SA.phase, value: admitted && !stopRequest ? 'running' : 'queued' },
      { key: RUN_SA.result, value: state.result },
    ]);
  }

  // A run that continued as new asks again about the tasks still lost (the question was dropped).
  for (const name of lostTasks(state)) lost.ask(name);

  // The runner keys the control worker knows already, asked beside the first reservations.
  if (ctx.patches.has('prefetchKeys') && ctx.patches.has('runnerProofs')) {
    const pools = [...new Set(spec.tasks.filter((t) => !t.fleet).map((t) => t.pool))];
    if (pools.length > 0)
      ctx.notices.push(ctx.proofs.prefetch({ pools, runners: options.runner ? [options.runner] : [] }));
  }

  try {
    if (!admitted) {
      state.reason = `queued: waiting for a slot of changegroup "${admission?.changegroup}"`;
      await condition(() => admitted || stopRequest !== null);
      state.reason = null;
    }
    if (!stopRequest) {
      state.startedAt ??= ctx.now();
      setPhase('running');
    }
    while (!stopRequest) {
      // The DAG only moves when a task ends, is approved or goes back to pending; then only those
      // tasks and their dependents are looked at (every task once, at the start), not 10,000.
      if (ctx.dagChanged) for (const name of run.advanceDag()) dispatch(name);
      leases.scheduleAll();
      // A reservation still out does not hold the run: its leases would only lapse.
      if (ctx.tasksInFlight === 0 && allFinal(state)) break;
      if (draining() && ctx.tasksInFlight === 0) {
        // Every task is final, pending or lost (waiting for its runner, which reports to the
        // workflow id, so to the next run): nothing is lost by starting a fresh history. A
        // reservation still out is dropped; the runner gives its leases back on eviction.
        await condition(allHandlersFinished);
        await Promise.allSettled(ctx.notices);
        const next: RunInput = { ...input, resume: { state, admitted } satisfies RunResume };
        await continueAsNew<typeof runWorkflow>(next);
      }
      const seen = run.version();
      await condition(() => run.version() !== seen);
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // Cancelled through Temporal (the Web UI, `temporal workflow cancel`; `runfleet run cancel` stops):
    // record the stop, then end as Temporal's cancelled.
    await CancellationScope.nonCancellable(async () => {
      await settleStopped('cancelled through Temporal');
      await release();
      await Promise.allSettled(ctx.notices);
    });
    throw err;
  }
  const stop = stopRequest as StopRunRequest | null;
  if (stop) {
    await settleStopped(`stopped by ${stop.by}: ${stop.reason}`);
  } else {
    state.result = runResult(spec, state, false);
    state.finishedAt = ctx.now();
    setPhase('finished');
  }
  await release();
  await Promise.allSettled(ctx.notices);
  return state;

  /** A ready task onto its queue, or onto the fleet path. */
  function dispatch(name: string): void {
    if (run.dispatched.has(name)) return;
    run.dispatched.add(name);
    const task = ctx.task(name);
    if (task.fleet) {
      ctx.tasksInFlight++;
      ctx.track(() => runOnFleet(ctx, leases, task), { task: name, settled: () => ctx.tasksInFlight-- });
    } else {
      leases.enqueue(task);
    }
  }

  /**
   * One task cancelled on its own: a task not yet reserved is cancelled at once; one reserved or
   * running is killed by its runner (its activity is cancelled); a lost one stops being waited
   * for. Its dependents then follow their conditions, as for a failure (`on_skipped` holds).
   */
  function cancelTask(name: string, by: string, reason: string): void {
    const t = ctx.taskState(name);
    const task = ctx.task(name);
    t.cancelledBy = by;
    // Work in flight for it (an execution, a fleet claim, a wait to retry, a question to its
    // runner) is cancelled; the first three end the task themselves, as cancelled.
    run.cancelScope(name, by, reason);
    leases.dequeue(task);
    if (t.status === 'lost') {
      ctx.finish(
        t,
        'cancelled',
        `${ctx.cancelledReason(name)}; the task was lost on runner "${t.runner}", nothing to kill`,
      );
      ctx.tellRegistry(taskFoundSignal, t.runner ?? '', name, t.attempts);
      return;
    }
    const endsItself =
      t.status === 'reserved' || t.retryAt !== undefined || (task.fleet !== undefined && run.dispatched.has(name));
    if (!endsItself) ctx.finish(t, 'cancelled', ctx.cancelledReason(name));
  }

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

  /** Lets every task settle (runners confirm the kill), then records the run as stopped. */
  async function settleStopped(reason: string): Promise<void> {
    await Promise.allSettled(run.inFlight);
    for (const name of unstartedTasks(state)) ctx.finish(ctx.taskState(name), 'cancelled', 'the run was stopped');
    // Nothing to kill: the runner is silent. The run stops waiting for its report.
    for (const name of lostTasks(state)) {
      const t = ctx.taskState(name) as TaskState;
      ctx.finish(t, 'cancelled', `${reason}; the task was lost on runner "${t.runner}", nothing to kill`);
      ctx.tellRegistry(taskFoundSignal, t.runner ?? '', name, t.attempts);
    }
    state.reason = reason;
    state.result = 'stopped';
    state.finishedAt = ctx.now();
    const anyStarted = Object.values(state.tasks).some((t) => t.attempts > 0);
    setPhase(anyStarted ? 'finished' : 'cancelled');
  }

  /** Upserts the search attributes among `pairs` whose values the run does not have yet. */
  function upsertChanges(pairs: SearchAttributePair[]): void {
    const current = workflowInfo().typedSearchAttributes;
    const changes = pairs.filter(({ key, value }) => !sameValue(current.get(key), value));
    if (changes.length > 0) upsertSearchAttributes(changes);
  }

  function draining(): boolean {
    const info = workflowInfo();
    if (info.historyLength >= CONTINUE_AS_NEW_AT_EVENTS) return true;
    // Large payloads fill a history long before its event count does: the server's suggestion
    // (or CONTINUE_AS_NEW_AT_BYTES) counts too, once the run has made some progress here.
    const big = info.continueAsNewSuggested || info.historySize >= CONTINUE_AS_NEW_AT_BYTES;
    return big && info.historyLength >= CONTINUE_AS_NEW_MIN_EVENTS && ctx.patches.has('historySize');
  }
}
