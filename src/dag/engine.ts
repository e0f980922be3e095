/**
 * The DAG rules of a run, as pure functions over plain-JSON state. The run workflow calls
 * them; unit tests drive them without Temporal. Sandbox-safe.
 *
 * - A task is ready when every parent is final and each parent's outcome is one of the
 *   conditions the task lists for it (default `on_success`), and it is approved if it must be.
 * - A task whose parents are all final but whose conditions do not hold is skipped; skipping
 *   propagates (a child may run `on_skipped`).
 * - Outcome of a parent: success -> on_success; failed -> on_failure, or on_success when the
 *   parent has `ignore_failure` (like a CI "continue on error"); skipped or cancelled ->
 *   on_skipped. A lost parent is not final: its children wait for its runner to report.
 * - Result: `stopped` if the run was stopped; `failed` if any task failed without
 *   `ignore_failure`; otherwise `success`.
 */
import { finishTask } from '../run/transitions';
import type { Restart, RunSpec, TaskSpec } from '../spec/schema';
import {
  FINAL_TASK_STATUSES,
  type DependCondition,
  type RunResult,
  type RunState,
  type TaskState,
  type TaskStatus,
} from '../types';

export interface Dependency {
  task: string;
  conditions: DependCondition[];
}

export function dependenciesOf(task: TaskSpec): Dependency[] {
  return task.depends.map((d) =>
    typeof d === 'string' ? { task: d, conditions: ['on_success'] } : { task: d.task, conditions: d.conditions },
  );
}

export function isFinal(status: TaskStatus): boolean {
  return FINAL_TASK_STATUSES.includes(status);
}

export function initialRunState(id: string, spec: RunSpec, now: string, restart?: Restart): RunState {
  const tasks: Record<string, TaskState> = {};
  for (const task of spec.tasks) {
    tasks[task.name] = {
      status: 'pending',
      runner: null,
      startedAt: null,
      finishedAt: null,
      exitCode: null,
      reason: null,
      attempts: 0,
      approval: { required: task.needs_approval, approvedBy: null, approvedAt: null },
    };
  }
  for (const [name, kept] of Object.entries(restart?.keep ?? {})) {
    const t = tasks[name];
    if (!t) continue;
    Object.assign(t, kept, { status: 'success', reason: `kept from ${restart?.of}: it succeeded there` });
  }
  return {
    id,
    name: spec.name,
    group: spec.group,
    phase: 'queued',
    result: 'unknown',
    createdAt: now,
    startedAt: null,
    finishedAt: null,
    reason: null,
    restartOf: restart?.of ?? null,
    tasks,
  };
}

function taskState(state: RunState, name: string): TaskState {
  const t = state.tasks[name];
  if (!t) throw new Error(`no task "${name}" in run state`);
  return t;
}

function outcomeOf(spec: TaskSpec, t: TaskState): DependCondition {
  switch (t.status) {
    case 'success':
      return 'on_success';
    case 'failed':
      return spec.ignore_failure ? 'on_success' : 'on_failure';
    default:
      return 'on_skipped';
  }
}

/**
 * Applies skips until nothing changes, then returns the names of tasks ready to start,
 * in spec order. `now` stamps skipped tasks. Mutates `state`.
 */
export function advance(spec: RunSpec, state: RunState, now: string): string[] {
  const byName = new Map(spec.tasks.map((t) => [t.name, t] as const));
  let changed = true;
  while (changed) {
    changed = false;
    for (const task of spec.tasks) {
      const t = taskState(state, task.name);
      if (t.status !== 'pending') continue;
      const verdict = evaluate(task, state, byName);
      if (verdict === 'skip') {
        finishTask(t, 'skipped', skipReason(task, state, byName), now);
        changed = true;
      }
    }
  }
  const ready: string[] = [];
  for (const task of spec.tasks) {
    const t = taskState(state, task.name);
    if (t.status === 'pending' && evaluate(task, state, byName) === 'ready') {
      if (t.approval.required && t.approval.approvedAt === null) continue;
      ready.push(task.name);
    }
  }
  return ready;
}

function evaluate(task: TaskSpec, state: RunState, byName: Map<string, TaskSpec>): 'wait' | 'ready' | 'skip' {
  let allFinal = true;
  let allHold = true;
  for (const dep of dependenciesOf(task)) {
    const parent = taskState(state, dep.task);
    if (!isFinal(parent.status)) {
      allFinal = false;
      continue;
    }
    const parentSpec = byName.get(dep.task) as TaskSpec;
    if (!dep.conditions.includes(outcomeOf(parentSpec, parent))) allHold = false;
  }
  if (!allFinal) return allHold ? 'wait' : 'skip';
  return allHold ? 'ready' : 'skip';
}

function skipReason(task: TaskSpec, state: RunState, byName: Map<string, TaskSpec>): string {
  for (const dep of dependenciesOf(task)) {
    const parent = taskState(state, dep.task);
    if (!isFinal(parent.status)) continue;
    const outcome = outcomeOf(byName.get(dep.task) as TaskSpec, parent);
    if (!dep.conditions.includes(outcome)) {
      return `"${dep.task}" ended ${parent.status}; this task runs ${dep.conditions.join(' or ')}`;
    }
  }
  return 'its conditions cannot hold';
}

/** True when every task is final. */
export function allFinal(state: RunState): boolean {
  return Object.values(state.tasks).every((t) => isFinal(t.status));
}

export function runResult(spec: RunSpec, state: RunState, stopped: boolean): RunResult {
  if (stopped) return 'stopped';
  for (const task of spec.tasks) {
    const t = taskState(state, task.name);
    // A lost task is not final, so a finished run has none; were one left, the run did not succeed.
    if (t.status === 'lost') return 'failed';
    if (t.status === 'failed' && !task.ignore_failure) return 'failed';
  }
  return 'success';
}

/** Lost tasks: started on a runner that went silent, waiting for it to report or be purged. */
export function lostTasks(state: RunState): string[] {
  return Object.entries(state.tasks)
    .filter(([, t]) => t.status === 'lost')
    .map(([name]) => name);
}

/** Tasks not yet started; on stop they are marked cancelled. */
export function unstartedTasks(state: RunState): string[] {
  return Object.entries(state.tasks)
    .filter(([, t]) => t.status === 'pending' || t.status === 'reserved')
    .map(([name]) => name);
}
