/** Matrix tasks: expansion into cells (names, env, substitution, dependencies) and every refusal. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { advance, initialRunState } from '../../src/dag/engine';
import { matrixCellName, matrixCells } from '../../src/spec/matrix';
import { LIMITS } from '../../src/spec/schema';
import { checkRunSpec, validateRunSpec, type SpecProblem } from '../../src/spec/validate';

type Obj = Record<string, unknown>;
const task = (name: string, extra: Obj = {}): Obj => ({ name, steps: ['true'], ...extra });
const run = (tasks: Obj[]): Obj => ({ name: 'r', tasks });

function problems(input: unknown): SpecProblem[] {
  const result = checkRunSpec(input);
  if (result.ok) throw new Error(`expected an invalid spec, got a valid one: ${JSON.stringify(input).slice(0, 120)}`);
  return result.problems;
}

describe('cells', () => {
  it('are the cartesian product, the first key varying slowest', () => {
    expect(matrixCells({ a: ['1', '2'], b: ['x', 'y'] })).toEqual([
      { a: '1', b: 'x' },
      { a: '1', b: 'y' },
      { a: '2', b: 'x' },
      { a: '2', b: 'y' },
    ]);
  });

  it('are named task-key-value-..., characters a name cannot hold spelled "_"', () => {
    expect(matrixCellName('test', { node: '20', os: 'linux' })).toBe('test-node-20-os-linux');
    expect(matrixCellName('t', { img: 'ghcr.io/a b:1' })).toBe('t-img-ghcr.io_a_b_1');
    expect(matrixCellName('t', { v: '' })).toBe('t-v-_');
  });
});

describe('expansion', () => {
  const spec = validateRunSpec(
    run([
      task('build'),
      task('test', {
        depends: ['build'],
        matrix: { node: [20, 22], os: ['linux'] },
        env: { LABEL: 'node ${{ matrix.node }}', MATRIX_NODE: 'overridden' },
        steps: ['echo ${{matrix.node}} on ${{ matrix.os }}', { name: 'n${{ matrix.node }}', run: 'true' }],
        runs_on: { os: '${{ matrix.os }}' },
        working_dir: 'src/${{ matrix.node }}',
      }),
      task('report', { depends: [{ task: 'test', conditions: ['on_success', 'on_failure'] }] }),
      task('one', { depends: ['test-node-22-os-linux'] }),
    ]),
  );
  const byName = Object.fromEntries(spec.tasks.map((t) => [t.name, t]));

  it('puts one task per cell in the matrix task’s place, keeping where each came from', () => {
    expect(spec.tasks.map((t) => t.name)).toEqual([
      'build',
      'test-node-20-os-linux',
      'test-node-22-os-linux',
      'report',
      'one',
    ]);
    expect(byName['test-node-20-os-linux']?.matrix).toEqual({ of: 'test', values: { node: '20', os: 'linux' } });
    expect(byName['build']?.matrix).toBeUndefined();
  });

  it('substitutes values into steps, env, runs_on and working_dir, and sets MATRIX_<KEY> over the task’s own', () => {
    const cell = byName['test-node-22-os-linux'];
    expect(cell?.steps).toEqual(['echo 22 on linux', { name: 'n22', run: 'true' }]);
    expect(cell?.env).toEqual({ LABEL: 'node 22', MATRIX_NODE: '22', MATRIX_OS: 'linux' });
    expect(cell?.runs_on).toEqual({ os: 'linux' });
    expect(cell?.working_dir).toBe('src/22');
    expect(cell?.depends).toEqual(['build']);
  });

  it('makes a dependency on the matrix task one on every cell, with its conditions; a cell may be named alone', () => {
    expect(byName['report']?.depends).toEqual([
      { task: 'test-node-20-os-linux', conditions: ['on_success', 'on_failure'] },
      { task: 'test-node-22-os-linux', conditions: ['on_success', 'on_failure'] },
    ]);
    expect(byName['one']?.depends).toEqual(['test-node-22-os-linux']);
  });

  it('runs dependents only once every cell is final', () => {
    const now = '2025-01-01T00:00:00.000Z';
    const state = initialRunState('r1', spec, now);
    expect(advance(spec, state, now)).toEqual(['build']);
    (state.tasks['build'] as { status: string }).status = 'success';
    expect(advance(spec, state, now)).toEqual(['test-node-20-os-linux', 'test-node-22-os-linux']);
    for (const cell of ['test-node-20-os-linux', 'test-node-22-os-linux'])
      (state.tasks[cell] as { status: string }).status = 'running';
    (state.tasks['test-node-22-os-linux'] as { status: string }).status = 'failed';
    // `one` needed that cell's success: skipped; `report` still waits for the other cell.
    expect(advance(spec, state, now)).toEqual([]);
    expect(state.tasks['one']?.status).toBe('skipped');
    expect(state.tasks['report']?.status).toBe('pending');
    (state.tasks['test-node-20-os-linux'] as { status: string }).status = 'success';
    expect(advance(spec, state, now)).toEqual(['report']);
  });

  it('is the identity for a spec without a matrix, and what validation returns is valid again', () => {
    const plain = run([task('a'), task('b', { depends: ['a'] })]);
    expect(validateRunSpec(plain).tasks.map((t) => t.name)).toEqual(['a', 'b']);
  });

  it('examples/matrix.yaml: build -> 2 cells -> report', () => {
    const file = validateRunSpec(parse(readFileSync(join(__dirname, '../../examples/matrix.yaml'), 'utf8')));
    expect(file.tasks.map((t) => t.name)).toEqual([
      'build',
      'test-node-20-os-linux',
      'test-node-22-os-linux',
      'report',
    ]);
    expect(file.tasks[3]?.depends).toEqual(['test-node-20-os-linux', 'test-node-22-os-linux']);
  });
});

describe('refusals, each naming the field', () => {
  const messages = (input: unknown) => problems(input).map((p) => `${p.path}: ${p.message}`);

  it('an empty matrix, a key without values, a bad key, a duplicate value', () => {
    expect(messages(run([task('t', { matrix: {} })]))).toEqual(['tasks.t.matrix: a matrix needs at least one key']);
    expect(messages(run([task('t', { matrix: { node: [] } })]))).toEqual([
      'tasks.t.matrix.node: a matrix key needs at least one value',
    ]);
    expect(messages(run([task('t', { matrix: { 'no-dash': ['1'] } })]))[0]).toMatch(
      /^tasks\.t\.matrix\.no-dash: .*matrix keys are letters, digits and "_"/,
    );
    expect(messages(run([task('t', { matrix: { v: ['1', '1'] } })]))).toEqual([
      'tasks.t.matrix.v[1]: duplicate value "1"',
    ]);
  });

  it('keys that set the same variable', () => {
    expect(messages(run([task('t', { matrix: { node: ['1'], NODE: ['2'] } })]))).toEqual([
      'tasks.t.matrix.NODE: sets MATRIX_NODE as key "node" does (keys must differ in more than case)',
    ]);
  });

  it(`more than ${LIMITS.maxMatrixCells} cells, and a run its matrices take past ${LIMITS.maxTasks} tasks`, () => {
    const wide = { a: Array.from({ length: 17 }, (_, i) => `${i}`), b: Array.from({ length: 16 }, (_, i) => `${i}`) };
    expect(messages(run([task('t', { matrix: wide })]))).toEqual([
      `tasks.t.matrix: 272 cells; a matrix has at most ${LIMITS.maxMatrixCells}`,
    ]);
    const cells = { a: Array.from({ length: 16 }, (_, i) => `${i}`), b: Array.from({ length: 16 }, (_, i) => `${i}`) };
    const many = Array.from({ length: 40 }, (_, i) => task(`t${i}`, { matrix: cells }));
    expect(messages(run(many))).toEqual([
      `tasks: a run has at most ${LIMITS.maxTasks} tasks; its matrices expand it to ${40 * 256}`,
    ]);
  });

  it('a reference to a key the matrix lacks, or in a task without one', () => {
    expect(messages(run([task('t', { matrix: { a: ['1'] }, steps: ['echo ${{ matrix.b }}'] })]))).toEqual([
      'tasks.t.steps[0]: ${{ matrix.b }}: the matrix has no key "b" (it has "a")',
    ]);
    expect(messages(run([task('t', { env: { X: '${{ matrix.a }}' } })]))).toEqual([
      'tasks.t.env.X: ${{ matrix.a }}: the task has no matrix',
    ]);
  });

  it('a value that makes a cell’s field invalid once substituted: a working_dir that climbs out, a bad label', () => {
    expect(messages(run([task('t', { matrix: { d: ['ok', '../..'] }, working_dir: '${{ matrix.d }}' })]))[0]).toMatch(
      /^tasks\.t\.working_dir: in cell "t-d-\.\._\.\.": /,
    );
    expect(messages(run([task('t', { matrix: { l: ['a b'] }, runs_on: { os: '${{ matrix.l }}' } })]))[0]).toMatch(
      /^tasks\.t\.runs_on\.os: in cell "t-l-a_b": label values are/,
    );
  });

  it('a cell named like another task, two cells with one name, a name too long', () => {
    expect(messages(run([task('t', { matrix: { v: ['1'] } }), task('t-v-1')]))).toEqual([
      'tasks.t.matrix: cell "t-v-1" has the name of another task',
    ]);
    expect(messages(run([task('t', { matrix: { v: ['a b', 'a/b'] } })]))).toEqual([
      'tasks.t.matrix: two cells are both named "t-v-a_b" (values differ only in characters a name cannot hold)',
    ]);
    expect(messages(run([task('t'.repeat(60), { matrix: { v: ['1'] } })]))[0]).toMatch(/is longer than 63 characters/);
  });

  it('a dependency on a cell of the task’s own matrix, and a cell listed twice', () => {
    expect(messages(run([task('t', { matrix: { v: ['1'] }, depends: ['t-v-1'] })]))).toContain(
      'tasks.t.depends[0]: "t-v-1" is a cell of this task\'s own matrix',
    );
    expect(messages(run([task('t', { matrix: { v: ['1', '2'] } }), task('u', { depends: ['t-v-2', 't'] })]))).toEqual([
      'tasks.u.depends[1]: "t-v-2" is listed twice (a cell of "t")',
    ]);
    expect(messages(run([task('t', { matrix: { v: ['1', '2'] } }), task('u', { depends: ['t', 't-v-2'] })]))).toEqual([
      'tasks.u.depends[1]: "t-v-2" is listed twice',
    ]);
  });
});
