/**
 * What the parts of a run share: its spec, options and state, and the few actions every part
 * takes (finish a task, wake the main loop, track work in flight, tell a runner's registry).
 * `workflows/run.ts` builds one per run; the lease scheduler (`leases.ts`), the fleet path
 * (`fleet.ts`) and the lost-task protocol (`lost.ts`) take it. Task statuses change only through
 * `src/run/transitions.ts`.
 */
import { CancellationScope, getExternalWorkflowHandle, log, workflowInfo } from '@temporalio/workflow';
import { runnerWorkflowId } from '../../src/ids';
import { advance, advanceAfter, dagIndex, isFinal } from '../../src/dag/engine';
import { finishTask, type FinalStatus } from '../../src/run/transitions';
import type { RunOptions, RunSpec, TaskSpec } from '../../src/spec/schema';
import type { RunState, TaskState } from '../../src/types';
import type { RunnerPurgedRequest } from '../run-messages';
import type { LostTaskRef, taskLostSignal } from '../runner-messages';
import type { RunnerProofs } from '../runner-proofs';
import type { RunPatches } from './patches';
import { describeError } from './failures';
import { createRunMetrics, type RunMetrics } from './metrics';

/** Refusals the run keeps in its state (`refusals`): a forger's flood must not grow it without bound. */
const MAX_REFUSALS_KEPT = 50;

/** A fleet instance held by a task lost on it, released if the task is given back. */
export interface FleetClaim {
  fleet: string;
  instanceId: string;
  requestId: string;
}

export interface RunContext {
  readonly spec: RunSpec;
  readonly options: RunOptions;
  readonly state: RunState;
  readonly proofs: RunnerProofs;
  /** Which of the run workflow's patches this run takes (workflows/run/patches.ts). */
  readonly patches: RunPatches;
  /** Runners purged while this run lives: a task still executing there fails when its heartbeat times out. */
  readonly purged: Record<string, RunnerPurgedRequest>;
  /** Claims kept by fleet tasks lost on their instance, by task. */
  readonly lostClaims: Record<string, FleetClaim>;
  /** Signals and releases sent without holding the run; settled before it ends or continues. */
  readonly notices: Promise<void>[];
  /** Executions and fleet tasks in flight (reservations and lookups are not counted). */
  tasksInFlight: number;
  /** True when the DAG must be walked again (a task ended, was approved or went back to pending). */
  readonly dagChanged: boolean;
  /** `name` ended, was approved or went back to pending: the next DAG walk looks at it and its dependents. */
  taskChanged(name: string): void;
  task(name: string): TaskSpec;
  taskState(name: string): TaskState;
  now(): string;
  /** Wakes the main loop. */
  bump(): void;
  finish(t: TaskState, status: FinalStatus, reason: string | null, at?: string): void;
  /**
   * Runs work in the tasks' cancellation scope (a stop cancels it), or in `task`'s own scope
   * inside it (cancelling that one task cancels it too). `settled` runs when it ends.
   */
  track(start: () => Promise<void>, opts?: { task?: string; settled?: () => void }): void;
  /** Forgets that `name` was dispatched: the next DAG walk dispatches it again. */
  redispatch(name: string): void;
  /** Why `name` was cancelled on its own, or null (`cancelTask`). */
  cancelledReason(name: string): string | null;
  tellRegistry(signal: typeof taskLostSignal, runner: string, task: string, attempt: number): void;
  /** A message a runner's key does not verify: not applied, and said so. */
  refuse(runner: string, task: string | null, message: string): void;
  /** The run's metrics (workflows/run/metrics.ts). */
  metrics: RunMetrics;
  /** True once the run should settle what runs and continue as new. */
  draining(): boolean;
}

export interface ContextParts {
  spec: RunSpec;
  options: RunOptions;
  state: RunState;
  proofs: RunnerProofs;
  patches: RunPatches;
  tasksScope: CancellationScope;
  draining: () => boolean;
}

export interface RunContextHandle {
  ctx: RunContext;
  /** Every tracked promise, settled before the run ends. */
  inFlight: Promise<void>[];
  /** Tasks dispatched (queued, reserved, running, waiting to retry): the DAG walk skips them. */
  dispatched: Set<string>;
  /** The version the main loop waits to change. */
  version(): number;
  /**
   * Applies skips and returns the tasks ready to start, in spec order: a walk of every task the
   * first time (a run that continued as new too), then of the tasks changed since and their
   * dependents only (tasks it returned before and that are still ready are not returned again).
   */
  advanceDag(): string[];
  /** Cancels one task's scope; returns false when it has none (not dispatched). */
  cancelScope(name: string, by: string, reason: string): boolean;
}

export function createRunContext(parts: ContextParts): RunContextHandle {
  const { spec, state, tasksScope } = parts;
  const specs = new Map(spec.tasks.map((t) => [t.name, t] as const));
  const index = dagIndex(spec);
  /** Task names by state object: `finish` takes the state. */
  const names = new Map(Object.entries(state.tasks).map(([name, t]) => [t, name] as const));
  /** Changed since the last DAG walk; null until the first walk, which looks at every task. */
  let changed: Set<string> | null = null;
  const inFlight: Promise<void>[] = [];
  const dispatched = new Set<string>();
  const scopes = new Map<string, CancellationScope>();
  const cancels = new Map<string, string>();
  let version = 0;

  const metrics = createRunMetrics();
  const ctx: RunContext = {
    spec,
    options: parts.options,
    state,
    proofs: parts.proofs,
    patches: parts.patches,
    purged: {},
    lostClaims: {},
    notices: [],
    tasksInFlight: 0,
    get dagChanged() {
      return changed === null || changed.size > 0;
    },
    taskChanged: (name) => void changed?.add(name),
    task: (name) => specs.get(name) as TaskSpec,
    taskState: (name) => state.tasks[name] as TaskState,
    now: () => new Date().toISOString(),
    bump: () => void version++,
    finish(t, status, reason, at) {
      const name = names.get(t);
      // Not one of this run's task states (none is replaced): the next walk looks at every task.
      if (name === undefined) changed = null;
      else ctx.taskChanged(name);
      finishTask(t, status, reason, ctx.now(), at);
    },
    track(start, opts) {
      const task = opts?.task;
      // One scope's run a piece of work: a task's own scope is a child of the tasks' scope.
      const scope = task === undefined ? tasksScope : taskScope(task);
      inFlight.push(
        scope.run(start).finally(() => {
          opts?.settled?.();
          ctx.bump();
        }),
      );
    },
    redispatch(name) {
      dispatched.delete(name);
      ctx.taskChanged(name);
    },
    cancelledReason: (name) => cancels.get(name) ?? null,
    tellRegistry(signal, runner, task, attempt) {
      if (signal.name === 'taskLost') metrics.taskLost();
      else metrics.taskFound();
      const ref: LostTaskRef = { runWorkflowId: workflowInfo().workflowId, task, attempt };
      ctx.notices.push(
        CancellationScope.nonCancellable(() =>
          getExternalWorkflowHandle(runnerWorkflowId(runner)).signal(signal, ref),
        ).catch((err: unknown) =>
          log.info(`runner registry ${runnerWorkflowId(runner)} not told: ${describeError(err)}`),
        ),
      );
    },
    refuse(runner, task, message) {
      log.warn(message, { runner, task });
      metrics.messageRefused();
      const refusals = (state.refusals ??= []);
      refusals.push({ at: ctx.now(), runner, task, message });
      if (refusals.length > MAX_REFUSALS_KEPT) refusals.splice(0, refusals.length - MAX_REFUSALS_KEPT);
      const t = task === null ? undefined : state.tasks[task];
      if (t && !isFinal(t.status)) t.reason = message;
      ctx.bump();
    },
    draining: parts.draining,
    metrics,
  };

  /** One task's scope, a child of the tasks' scope, made when its work is first tracked. */
  function taskScope(name: string): CancellationScope {
    let s = scopes.get(name);
    if (!s) {
      s = new CancellationScope({ parent: tasksScope, cancellable: true });
      scopes.set(name, s);
    }
    return s;
  }

  return {
    ctx,
    inFlight,
    dispatched,
    version: () => version,
    advanceDag() {
      const now = ctx.now();
      const ready = changed === null ? advance(spec, state, now, index) : advanceAfter(index, state, now, changed);
      changed = new Set();
      return ready;
    },
    cancelScope(name, by, reason) {
      cancels.set(name, `cancelled by ${by}: ${reason}`);
      const s = scopes.get(name);
      if (!s) return false;
      s.cancel();
      return true;
    },
  };
}
