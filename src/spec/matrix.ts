/**
 * Matrix tasks: a task with `matrix: {node: [20, 22], os: [linux]}` becomes one task per cell of
 * the cartesian product of its lists (the first key varies slowest), in the matrix task's place.
 * Each cell:
 *
 * - is named `<task>-<key>-<value>-...` in key order (`test-node-20-os-linux`): the characters a
 *   task name allows (letters, digits, "_", ".", "-"), so a cell's name is safe wherever a task's is
 *   (runner paths, shell arguments, ids); a value's other characters are spelled "_";
 * - has `MATRIX_<KEY>=<value>` in its env, and `${{ matrix.KEY }}` replaced by the value in its
 *   steps, env values, image, working_dir and runs_on values (checked again once replaced);
 * - keeps where it came from in `matrix: {of, values}`.
 *
 * A dependency on the matrix task's name is one on every cell, with the same conditions; a cell
 * may also be named on its own. Pure and sandbox-safe (no Node imports): `validateRunSpec`
 * applies it, so the CLI and the run workflow expand a spec the same way.
 */
import {
  NAME_RE,
  matrixVariable,
  runSchemas,
  type MatrixCell,
  type ParsedRunSpec,
  type ParsedTaskSpec,
  type RunSpec,
  type SpecProblem,
  type TaskSpec,
} from './schema';

/** `${{ matrix.KEY }}`, spaces inside the braces optional; any KEY, so that a wrong one is named. */
const REFERENCE_RE = /\$\{\{\s*matrix\.([^\s}]*)\s*\}\}/g;

export interface MatrixExpansion {
  /** The spec with every matrix task replaced by its cells, dependencies on it by ones on them. */
  spec: RunSpec;
  /** Each matrix task's cells' names, in order. */
  cells: Record<string, string[]>;
  /** Bad references, cell names that collide or are too long, cells' fields invalid once substituted. */
  problems: SpecProblem[];
}

/** The cells of a matrix, in order: `{a: [1, 2], b: [x]}` -> `{a: 1, b: x}`, `{a: 2, b: x}`. */
export function matrixCells(matrix: Record<string, string[]>): Record<string, string>[] {
  let cells: Record<string, string>[] = [{}];
  for (const [key, values] of Object.entries(matrix)) {
    cells = cells.flatMap((cell) => values.map((value) => ({ ...cell, [key]: value })));
  }
  return cells;
}

/** `test` with `{node: '20', os: 'linux'}` -> `test-node-20-os-linux`. */
export function matrixCellName(task: string, values: Record<string, string>): string {
  const parts = Object.entries(values).flatMap(([key, value]) => [key, value.replace(/[^A-Za-z0-9_.-]/g, '_') || '_']);
  return [task, ...parts].join('-');
}

/** Expands every matrix task of a parsed spec; a spec without one comes back with the same tasks. */
export function expandMatrices(spec: ParsedRunSpec): MatrixExpansion {
  const problems: SpecProblem[] = [];
  const planned = new Map<string, { name: string; values: Record<string, string> }[]>();
  const taken = new Set(spec.tasks.map((t) => t.name));
  for (const task of spec.tasks) {
    problems.push(...referenceProblems(task));
    if (!task.matrix) continue;
    const cells = matrixCells(task.matrix).map((values) => ({ name: matrixCellName(task.name, values), values }));
    const ownNames = new Set<string>();
    for (const cell of cells) {
      const problem = !NAME_RE.test(cell.name)
        ? `cell name "${cell.name}" is longer than 63 characters: use shorter keys or task name`
        : taken.has(cell.name)
          ? ownNames.has(cell.name)
            ? `two cells are both named "${cell.name}" (values differ only in characters a name cannot hold)`
            : `cell "${cell.name}" has the name of another task`
          : null;
      if (problem) {
        problems.push({ path: `tasks.${task.name}.matrix`, message: problem });
        break;
      }
      taken.add(cell.name);
      ownNames.add(cell.name);
    }
    planned.set(task.name, cells);
  }
  const cellNames: Record<string, string[]> = {};
  for (const [name, cells] of planned) cellNames[name] = cells.map((c) => c.name);

  const tasks: TaskSpec[] = [];
  for (const task of spec.tasks) {
    const { matrix: _definition, ...rest } = task;
    const depends = expandDepends(task.depends, cellNames);
    // Artifacts from a matrix task: from each of its cells.
    if (rest.artifacts_from)
      rest.artifacts_from = rest.artifacts_from.flatMap((n) =>
        Object.prototype.hasOwnProperty.call(cellNames, n) ? (cellNames[n] ?? []) : [n],
      );
    const cells = planned.get(task.name);
    if (!cells) {
      tasks.push({ ...rest, depends });
      continue;
    }
    const reported = new Set<string>();
    for (const { name, values } of cells) {
      const cell = substituted(rest, values);
      problems.push(...cellProblems(task.name, name, cell, reported));
      const matrix: MatrixCell = { of: task.name, values };
      tasks.push({ ...rest, ...cell, name, depends, matrix });
    }
  }
  return { spec: { ...spec, tasks }, cells: cellNames, problems };
}

/** A dependency on a matrix task becomes one on each of its cells, with the same conditions. */
function expandDepends(depends: ParsedTaskSpec['depends'], cells: Record<string, string[]>): ParsedTaskSpec['depends'] {
  return depends.flatMap((dep) => {
    const parent = typeof dep === 'string' ? dep : dep.task;
    const of = Object.prototype.hasOwnProperty.call(cells, parent) ? cells[parent] : undefined;
    if (!of) return [dep];
    return of.map((cell) => (typeof dep === 'string' ? cell : { ...dep, task: cell }));
  });
}

type Templated = Pick<ParsedTaskSpec, 'steps' | 'env' | 'image' | 'working_dir' | 'runs_on'>;

/** Every string a cell's values are substituted into, with its path below the task. */
function templatedStrings(task: Templated): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  task.steps.forEach((step, i) => {
    if (typeof step === 'string') out.push({ path: `steps[${i}]`, text: step });
    else {
      if (step.name !== undefined) out.push({ path: `steps[${i}].name`, text: step.name });
      out.push({ path: `steps[${i}].run`, text: step.run });
    }
  });
  for (const [k, v] of Object.entries(task.env ?? {})) out.push({ path: `env.${k}`, text: v });
  if (task.image !== undefined) out.push({ path: 'image', text: task.image });
  if (task.working_dir !== undefined) out.push({ path: 'working_dir', text: task.working_dir });
  for (const [k, v] of Object.entries(task.runs_on ?? {})) out.push({ path: `runs_on.${k}`, text: v });
  return out;
}

/** `${{ matrix.KEY }}` with a KEY the task's matrix lacks, or in a task without a matrix. */
function referenceProblems(task: ParsedTaskSpec): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const keys = task.matrix ? Object.keys(task.matrix) : [];
  for (const { path, text } of templatedStrings(task)) {
    for (const match of text.matchAll(REFERENCE_RE)) {
      const key = match[1] ?? '';
      if (keys.includes(key)) continue;
      problems.push({
        path: `tasks.${task.name}.${path}`,
        message: task.matrix
          ? `${match[0]}: the matrix has no key "${key}" (it has ${keys.map((k) => `"${k}"`).join(', ')})`
          : `${match[0]}: the task has no matrix`,
      });
    }
  }
  return problems;
}

/** The templated fields of one cell: its values substituted, `MATRIX_<KEY>` added to its env. */
function substituted(task: Templated, values: Record<string, string>): Templated {
  const sub = (text: string) => text.replace(REFERENCE_RE, (whole, key: string) => values[key] ?? whole);
  const subValues = (record: Record<string, string>) =>
    Object.fromEntries(Object.entries(record).map(([k, v]) => [k, sub(v)]));
  const env = subValues(task.env ?? {});
  // The matrix's variables win over the task's own of the same name: the cell is what they say.
  for (const [key, value] of Object.entries(values)) env[matrixVariable(key)] = value;
  const out: Templated = {
    steps: task.steps.map((step) =>
      typeof step === 'string'
        ? sub(step)
        : { ...step, run: sub(step.run), ...(step.name !== undefined ? { name: sub(step.name) } : {}) },
    ),
    env,
  };
  if (task.image !== undefined) out.image = sub(task.image);
  if (task.working_dir !== undefined) out.working_dir = sub(task.working_dir);
  if (task.runs_on !== undefined) out.runs_on = subValues(task.runs_on);
  return out;
}

/**
 * A cell's substituted fields against the task schema's own rules. Each field's problem is
 * reported once per matrix task (the first cell that has it), not once per cell.
 */
function cellProblems(task: string, cell: string, fields: Templated, reported: Set<string>): SpecProblem[] {
  const parsed = runSchemas().MatrixTemplatedSchema.safeParse(fields);
  if (parsed.success) return [];
  const problems: SpecProblem[] = [];
  for (const issue of parsed.error.issues) {
    const field = issue.path
      .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
      .join('');
    if (reported.has(field)) continue;
    reported.add(field);
    problems.push({ path: `tasks.${task}.${field}`, message: `in cell "${cell}": ${issue.message}` });
  }
  return problems;
}
