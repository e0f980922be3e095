/**
 * Validation of a run spec: the schema, then matrices expanded into their cells
 * (`src/spec/matrix.ts`), then the graph (duplicates, unknown and self dependencies, cycles).
 * Every problem is one line naming the task and the field. Sandbox-safe: the run workflow
 * validates its input with it, so a direct start gets the same expanded spec as the CLI.
 */
import type { z } from 'zod';
import { RunfleetError } from '../errors';
import { expandMatrices } from './matrix';
import {
  LIMITS,
  runSchemas,
  envBytes,
  type ParsedRunSpec,
  type RunOptions,
  type RunSpec,
  type SpecProblem,
} from './schema';

export type { SpecProblem } from './schema';

/** Validates a run spec; throws a RunfleetError `InvalidRunSpec` listing every problem. */
export function validateRunSpec(input: unknown): RunSpec {
  const result = checkRunSpec(input);
  if (!result.ok) throw invalid('InvalidRunSpec', 'invalid run spec', result.problems);
  return result.spec;
}

export function validateRunOptions(input: unknown): RunOptions {
  const parsed = runSchemas().RunOptionsSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw invalid('InvalidWorkflowInput', 'invalid run options', zodProblems(parsed.error, input, 'options'));
  }
  return parsed.data;
}

export type SpecCheck = { ok: true; spec: RunSpec } | { ok: false; problems: SpecProblem[] };

export function checkRunSpec(input: unknown): SpecCheck {
  const size = jsonSize(input);
  if (size > LIMITS.maxSpecBytes) {
    return {
      ok: false,
      problems: [{ path: '(run)', message: `the spec is ${size} bytes; the limit is ${LIMITS.maxSpecBytes}` }],
    };
  }
  const parsed = runSchemas().RunSpecSchema.safeParse(input);
  if (!parsed.success) return { ok: false, problems: zodProblems(parsed.error, input) };
  if (parsed.data.tasks.length === 0)
    return { ok: false, problems: [{ path: 'tasks', message: 'a run needs at least one task' }] };
  const expansion = expandMatrices(parsed.data);
  const spec = expansion.spec;
  const graph = dependencyProblems(parsed.data, expansion.cells);
  const problems = [...envProblems(spec), ...graph, ...artifactProblems(parsed.data), ...expansion.problems];
  if (Object.keys(expansion.cells).length > 0) problems.push(...expandedSizeProblems(spec));
  if (graph.length === 0) problems.push(...cycleProblems(spec));
  return problems.length > 0 ? { ok: false, problems } : { ok: true, spec };
}

/** A spec its matrices made larger than the run's limits. */
function expandedSizeProblems(spec: RunSpec): SpecProblem[] {
  if (spec.tasks.length > LIMITS.maxTasks)
    return [
      {
        path: 'tasks',
        message: `a run has at most ${LIMITS.maxTasks} tasks; its matrices expand it to ${spec.tasks.length}`,
      },
    ];
  const size = jsonSize(spec);
  if (size > LIMITS.maxExpandedSpecBytes)
    return [
      {
        path: '(run)',
        message: `its matrices expand the spec to ${size} bytes; the limit is ${LIMITS.maxExpandedSpecBytes}`,
      },
    ];
  return [];
}

/** Each task's environment (the run's and its own) within `LIMITS.maxEnvBytes`. */
function envProblems(spec: RunSpec): SpecProblem[] {
  const runBytes = envBytes(spec.env);
  if (runBytes > LIMITS.maxEnvBytes)
    return [{ path: 'env', message: `is ${runBytes} bytes; the limit is ${LIMITS.maxEnvBytes}` }];
  const problems: SpecProblem[] = [];
  for (const t of spec.tasks) {
    const total = runBytes + envBytes(t.env);
    if (total > LIMITS.maxEnvBytes)
      problems.push({
        path: `tasks.${t.name}.env`,
        message: `with the run's env is ${total} bytes; the limit is ${LIMITS.maxEnvBytes}`,
      });
  }
  return problems;
}

/** Formats problems as the one-message-per-line text users see. */
export function formatProblems(title: string, problems: SpecProblem[]): string {
  return [`${title}:`, ...problems.map((p) => `  ${p.path}: ${p.message}`)].join('\n');
}

function invalid(
  code: 'InvalidRunSpec' | 'InvalidWorkflowInput',
  title: string,
  problems: SpecProblem[],
): RunfleetError {
  return new RunfleetError(code, formatProblems(title, problems), { problems });
}

/** UTF-8 bytes, as Temporal counts a payload (TextEncoder exists in the workflow sandbox too). */
function jsonSize(value: unknown): number {
  try {
    return new TextEncoder().encode(JSON.stringify(value ?? null)).length;
  } catch {
    return 0;
  }
}

/** Turns zod issues into paths that name tasks: `tasks[3]` becomes `tasks.build`. */
function zodProblems(error: z.ZodError, input: unknown, prefix?: string): SpecProblem[] {
  return error.issues.flatMap(flattenIssue).map((issue) => {
    const parts: string[] = prefix ? [prefix] : [];
    let node: unknown = input;
    for (let i = 0; i < issue.path.length; i++) {
      const key = issue.path[i];
      const parent = issue.path[i - 1];
      if (parent === 'tasks' && typeof key === 'number') {
        const task = (node as unknown[] | undefined)?.[key] as { name?: unknown } | undefined;
        parts.push(typeof task?.name === 'string' && task.name.length > 0 ? task.name : `[${key}]`);
      } else if (typeof key === 'number') {
        parts.push(`[${key}]`);
      } else {
        parts.push(String(key));
      }
      node = node && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key as PropertyKey] : undefined;
    }
    const path = parts.join('.').replace(/\.\[/g, '[') || '(run)';
    return { path, message: issueMessage(issue) };
  });
}

type Issue = z.core.$ZodIssue;

/**
 * A union that matched no branch reports every branch's issues; users want the branch their
 * input was meant for: the one that got furthest (longest path), preferring a type match.
 */
function flattenIssue(issue: Issue): Issue[] {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [issue];
  const score = (branch: Issue[]) =>
    Math.max(...branch.map((i) => i.path.length * 2 + (i.code === 'invalid_type' ? 0 : 1)));
  const best = [...issue.errors].sort((a, b) => score(b) - score(a))[0] ?? [];
  return best.flatMap((i) => flattenIssue({ ...i, path: [...issue.path, ...i.path] } as Issue));
}

function issueMessage(issue: Issue): string {
  if (issue.code === 'invalid_key') return issue.issues[0]?.message ?? issue.message;
  if (issue.code === 'unrecognized_keys')
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) return 'is required';
  return issue.message;
}

/**
 * Duplicate names, and dependencies that are unknown, on the task itself or listed twice, on the
 * spec as written (so `depends[i]` is the entry in the file): a parent is a task, a matrix task
 * (all its cells) or one cell of one.
 */
function dependencyProblems(spec: ParsedRunSpec, cells: Record<string, string[]>): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const seen = new Set<string>();
  for (const task of spec.tasks) {
    if (seen.has(task.name))
      problems.push({ path: `tasks.${task.name}.name`, message: `duplicate task name "${task.name}"` });
    seen.add(task.name);
  }
  const cellOf = new Map<string, string>();
  for (const [of, names] of Object.entries(cells)) for (const n of names) cellOf.set(n, of);
  for (const task of spec.tasks) {
    const parents = new Set<string>();
    task.depends.forEach((dep, i) => {
      const parent = typeof dep === 'string' ? dep : dep.task;
      const path = `tasks.${task.name}.depends[${i}]`;
      const named = Object.prototype.hasOwnProperty.call(cells, parent) ? (cells[parent] ?? []) : [parent];
      const again = named.find((n) => parents.has(n));
      if (parent === task.name) problems.push({ path, message: `task "${task.name}" depends on itself` });
      else if (cellOf.get(parent) === task.name)
        problems.push({ path, message: `"${parent}" is a cell of this task's own matrix` });
      else if (!seen.has(parent) && !cellOf.has(parent)) problems.push({ path, message: `unknown task "${parent}"` });
      else if (again === parent) problems.push({ path, message: `"${parent}" is listed twice` });
      else if (again !== undefined)
        problems.push({ path, message: `"${again}" is listed twice (a cell of "${cellOf.get(again) ?? parent}")` });
      for (const n of named) parents.add(n);
    });
  }
  return problems;
}

/**
 * `artifacts_from` names tasks this one depends on (it must wait for them) that declare
 * `artifacts` (else there is nothing to get).
 */
function artifactProblems(spec: ParsedRunSpec): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const byName = new Map(spec.tasks.map((t) => [t.name, t]));
  for (const task of spec.tasks) {
    const parents = new Set(task.depends.map((d) => (typeof d === 'string' ? d : d.task)));
    (task.artifacts_from ?? []).forEach((from, i) => {
      const path = `tasks.${task.name}.artifacts_from[${i}]`;
      if (!parents.has(from))
        problems.push({
          path,
          message: `"${from}" is not in depends: a task gets artifacts only from tasks it waits for`,
        });
      else if (byName.has(from) && !byName.get(from)?.artifacts)
        problems.push({ path, message: `task "${from}" declares no artifacts` });
    });
  }
  return problems;
}

function cycleProblems(spec: RunSpec): SpecProblem[] {
  const cycle = findCycle(spec);
  return cycle ? [{ path: `tasks.${cycle[0]}.depends`, message: `dependency cycle: ${cycle.join(' -> ')}` }] : [];
}

/** One cycle as a list of task names that starts and ends with the same task, or null. */
export function findCycle(spec: RunSpec): string[] | null {
  const parentsOf = new Map<string, string[]>();
  for (const t of spec.tasks)
    parentsOf.set(
      t.name,
      t.depends.map((d) => (typeof d === 'string' ? d : d.task)),
    );
  const color = new Map<string, 0 | 1 | 2>();
  const stack: string[] = [];
  // Iterative DFS: a 1,000-task chain must not overflow the stack.
  for (const start of parentsOf.keys()) {
    if (color.get(start)) continue;
    const frames: { node: string; next: number }[] = [{ node: start, next: 0 }];
    color.set(start, 1);
    stack.push(start);
    while (frames.length > 0) {
      const frame = frames[frames.length - 1] as { node: string; next: number };
      const parents = parentsOf.get(frame.node) ?? [];
      if (frame.next < parents.length) {
        const parent = parents[frame.next++] as string;
        const c = color.get(parent) ?? 0;
        if (c === 1) {
          const from = stack.indexOf(parent);
          // The stack walks child -> parent; print it in dependency order (parent first).
          return [...stack.slice(from), parent].reverse();
        }
        if (c === 0) {
          color.set(parent, 1);
          stack.push(parent);
          frames.push({ node: parent, next: 0 });
        }
      } else {
        color.set(frame.node, 2);
        stack.pop();
        frames.pop();
      }
    }
  }
  return null;
}
