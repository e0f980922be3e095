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
 *
 * `advance` looks at every task (a run's first walk); `advanceAfter`, with an index of the spec
 * built once per run (`dagIndex`), only at the tasks that changed and their dependents, with the
 * same results: a run of 10,000 tasks does not walk them all after each one ends.
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

/** A dependency with its parent's position in the spec. */
interface IndexedDependency extends Dependency {
  parent: number;
}

/**
 * What a DAG walk needs of a spec, derived from it once per run (never part of the run's state):
 * each task's dependencies and children by position in the spec, children in spec order.
 */
export interface DagIndex {
  readonly tasks: readonly TaskSpec[];
  readonly position: ReadonlyMap<string, number>;
  readonly parents: readonly (readonly IndexedDependency[])[];
  readonly children: readonly (readonly number[])[];
}

export function dagIndex(spec: RunSpec): DagIndex {
  const position = new Map(spec.tasks.map((t, i) => [t.name, i] as const));
  const children: number[][] = spec.tasks.map(() => []);
  const parents = spec.tasks.map((task, i) =>
    dependenciesOf(task).map(({ task: name, conditions }): IndexedDependency => {
      const parent = position.get(name);
      if (parent === undefined) throw new Error(`no task "${name}" in run spec`);
      const siblings = children[parent] as number[];
      // Tasks come in spec order: each list of children stays sorted.
      if (siblings[siblings.length - 1] !== i) siblings.push(i);
      return { task: name, conditions, parent };
    }),
  );
  return { tasks: spec.tasks, position, parents, children };
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
 * in spec order. `now` stamps skipped tasks. Mutates `state`. Walks every task: a run's first
 * walk (also after it continued as new); then `advanceAfter` walks only what changed.
 */
export function advance(spec: RunSpec, state: RunState, now: string, index: DagIndex = dagIndex(spec)): string[] {
  let changed = true;
  while (changed) {
    changed = false;
    index.tasks.forEach((task, i) => {
      const t = taskState(state, task.name);
      if (t.status !== 'pending' || evaluate(index, i, state) !== 'skip') return;
      finishTask(t, 'skipped', skipReason(index, i, state), now);
      changed = true;
    });
  }
  const ready: string[] = [];
  index.tasks.forEach((task, i) => {
    if (isReady(index, i, state)) ready.push(task.name);
  });
  return ready;
}

/**
 * `advance` after `changed` tasks ended, were approved or went back to pending, when every other
 * task is as the previous walk left it: only the changed tasks and their pending dependents are
 * looked at (skips still propagate). Applies the same skips, in the same order, as `advance`;
 * returns, in spec order, the tasks among those that are ready (those `advance` returns and no
 * earlier walk did, and the changed tasks themselves when they are ready).
 */
export function advanceAfter(index: DagIndex, state: RunState, now: string, changed: Iterable<string>): string[] {
  const seeds = new Set<number>();
  for (const name of changed) {
    const i = index.position.get(name);
    if (i === undefined) throw new Error(`no task "${name}" in run spec`);
    seeds.add(i);
    for (const child of index.children[i] as readonly number[]) seeds.add(child);
  }
  return walk(
    index,
    state,
    now,
    [...seeds].sort((a, b) => a - b),
  );
}

/**
 * `advance`'s skip passes over only the tasks a pass could change: a pass goes through its tasks
 * in spec order, and a skip adds the task's children to this pass (those after it) or to the
 * next (those before it), where a pass over every task would meet them. `seeds`: ascending.
 */
function walk(index: DagIndex, state: RunState, now: string, seeds: number[]): string[] {
  const seen = new Set<number>(seeds);
  let pass = seeds;
  while (pass.length > 0) {
    // `pass` is sorted, so it is a min-heap already; children after the current task join it.
    const heap = pass;
    const inPass = new Set(pass);
    const next: number[] = [];
    const inNext = new Set<number>();
    while (heap.length > 0) {
      const i = heapPop(heap);
      const task = index.tasks[i] as TaskSpec;
      const t = taskState(state, task.name);
      if (t.status !== 'pending' || evaluate(index, i, state) !== 'skip') continue;
      finishTask(t, 'skipped', skipReason(index, i, state), now);
      for (const child of index.children[i] as readonly number[]) {
        seen.add(child);
        if (child > i) {
          if (!inPass.has(child)) {
            inPass.add(child);
            heapPush(heap, child);
          }
        } else if (!inNext.has(child)) {
          inNext.add(child);
          next.push(child);
        }
      }
    }
    pass = next.sort((a, b) => a - b);
  }
  const ready = [...seen].filter((i) => isReady(index, i, state));
  return ready.sort((a, b) => a - b).map((i) => (index.tasks[i] as TaskSpec).name);
}

/** Pending, every parent final with its conditions holding, and approved if it must be. */
function isReady(index: DagIndex, i: number, state: RunState): boolean {
  const t = taskState(state, (index.tasks[i] as TaskSpec).name);
  if (t.status !== 'pending' || evaluate(index, i, state) !== 'ready') return false;
  return !t.approval.required || t.approval.approvedAt !== null;
}

function evaluate(index: DagIndex, i: number, state: RunState): 'wait' | 'ready' | 'skip' {
  let allFinal = true;
  let allHold = true;
  for (const dep of index.parents[i] as readonly IndexedDependency[]) {
    const parentSpec = index.tasks[dep.parent] as TaskSpec;
    const parent = taskState(state, parentSpec.name);
    if (!isFinal(parent.status)) {
      allFinal = false;
      continue;
    }
    if (!dep.conditions.includes(outcomeOf(parentSpec, parent))) allHold = false;
  }
  if (!allFinal) return allHold ? 'wait' : 'skip';
  return allHold ? 'ready' : 'skip';
}

function skipReason(index: DagIndex, i: number, state: RunState): string {
  for (const dep of index.parents[i] as readonly IndexedDependency[]) {
    const parentSpec = index.tasks[dep.parent] as TaskSpec;
    const parent = taskState(state, parentSpec.name);
    if (!isFinal(parent.status)) continue;
    if (!dep.conditions.includes(outcomeOf(parentSpec, parent))) {
      return `"${dep.task}" ended ${parent.status}; this task runs ${dep.conditions.join(' or ')}`;
    }
  }
  return 'its conditions cannot hold';
}

/** Adds `value` to a binary min-heap held in an array. */
function heapPush(heap: number[], value: number): void {
  let i = heap.push(value) - 1;
  while (i > 0) {
    const up = (i - 1) >> 1;
    if ((heap[up] as number) <= value) break;
    heap[i] = heap[up] as number;
    i = up;
  }
  heap[i] = value;
}

/** Takes the smallest value off a non-empty binary min-heap held in an array. */
function heapPop(heap: number[]): number {
  const top = heap[0] as number;
  const last = heap.pop() as number;
  if (heap.length === 0) return top;
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= heap.length) break;
    const right = left + 1;
    const child = right < heap.length && (heap[right] as number) < (heap[left] as number) ? right : left;
    if ((heap[child] as number) >= last) break;
    heap[i] = heap[child] as number;
    i = child;
  }
  heap[i] = last;
  return top;
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
