/** The DAG rules, driven directly on plain state: readiness, skips, conditions, results. */
import { describe, expect, it } from 'vitest';
import {
  advance,
  allFinal,
  dependenciesOf,
  initialRunState,
  isFinal,
  lostTasks,
  runResult,
  unstartedTasks,
} from '../../src/dag/engine';
import type { RunSpecInput } from '../../src/spec/schema';
import { validateRunSpec } from '../../src/spec/validate';
import type { DependCondition, RunState, TaskStatus } from '../../src/types';

const T0 = '2025-01-01T00:00:00.000Z';
const T1 = '2025-01-01T00:01:00.000Z';

type TaskInput = RunSpecInput['tasks'][number];
const task = (name: string, extra: Partial<TaskInput> = {}): TaskInput => ({ name, steps: ['true'], ...extra });

function setup(tasks: TaskInput[]) {
  const spec = validateRunSpec({ name: 'r', tasks });
  const state = initialRunState('run-1', spec, T0);
  return { spec, state };
}

function finish(state: RunState, name: string, status: TaskStatus): void {
  const t = state.tasks[name];
  if (!t) throw new Error(`no task ${name}`);
  t.status = status;
  t.finishedAt = T0;
}

const statusOf = (state: RunState, name: string) => state.tasks[name]?.status;

describe('initialRunState', () => {
  it('starts queued with every task pending and approval required where asked', () => {
    const { state } = setup([task('a'), task('b', { needs_approval: true })]);
    expect(state).toMatchObject({
      id: 'run-1',
      name: 'r',
      group: '/default',
      phase: 'queued',
      result: 'unknown',
      createdAt: T0,
      startedAt: null,
    });
    expect(state.tasks.a).toEqual({
      status: 'pending',
      runner: null,
      startedAt: null,
      finishedAt: null,
      exitCode: null,
      reason: null,
      attempts: 0,
      approval: { required: false, approvedBy: null, approvedAt: null },
    });
    expect(state.tasks.b?.approval.required).toBe(true);
  });
});

describe('helpers', () => {
  it('dependenciesOf normalizes string and object dependencies', () => {
    const { spec } = setup([
      task('a'),
      task('b'),
      task('c', { depends: ['a', { task: 'b', conditions: ['on_failure'] }] }),
    ]);
    expect(dependenciesOf(spec.tasks[2]!)).toEqual([
      { task: 'a', conditions: ['on_success'] },
      { task: 'b', conditions: ['on_failure'] },
    ]);
  });

  it('isFinal, allFinal and unstartedTasks', () => {
    expect(['success', 'failed', 'skipped', 'cancelled'].every((s) => isFinal(s as TaskStatus))).toBe(true);
    // Lost waits for its runner to report: not final.
    expect(['pending', 'reserved', 'running', 'lost'].some((s) => isFinal(s as TaskStatus))).toBe(false);
    const { state } = setup([task('a'), task('b'), task('c'), task('d')]);
    finish(state, 'a', 'success');
    state.tasks.b!.status = 'reserved';
    state.tasks.c!.status = 'running';
    expect(unstartedTasks(state)).toEqual(['b', 'd']);
    expect(allFinal(state)).toBe(false);
    for (const n of ['b', 'c', 'd']) finish(state, n, 'cancelled');
    expect(allFinal(state)).toBe(true);
  });
});

describe('advance: readiness', () => {
  it('roots are ready at once, in spec order; children wait for their parents', () => {
    const { spec, state } = setup([task('z'), task('child', { depends: ['z', 'a'] }), task('a')]);
    expect(advance(spec, state, T1)).toEqual(['z', 'a']);
    // Nothing changes while parents are pending or running: the same tasks are ready again.
    state.tasks.z!.status = 'running';
    state.tasks.a!.status = 'running';
    expect(advance(spec, state, T1)).toEqual([]);
    expect(statusOf(state, 'child')).toBe('pending');
    finish(state, 'z', 'success');
    expect(advance(spec, state, T1)).toEqual([]);
    finish(state, 'a', 'success');
    expect(advance(spec, state, T1)).toEqual(['child']);
  });

  it('does not return tasks already reserved or running', () => {
    const { spec, state } = setup([task('a'), task('b')]);
    state.tasks.a!.status = 'reserved';
    state.tasks.b!.status = 'running';
    expect(advance(spec, state, T1)).toEqual([]);
  });

  // For each parent outcome and each condition: does the child run (ready) or is it skipped?
  const outcomes: { status: TaskStatus; ignore?: boolean; holds: DependCondition }[] = [
    { status: 'success', holds: 'on_success' },
    { status: 'failed', holds: 'on_failure' },
    { status: 'failed', ignore: true, holds: 'on_success' },
    { status: 'skipped', holds: 'on_skipped' },
    { status: 'cancelled', holds: 'on_skipped' },
  ];
  for (const { status, ignore, holds } of outcomes) {
    for (const condition of ['on_success', 'on_failure', 'on_skipped'] as const) {
      const runs = condition === holds;
      it(`parent ${status}${ignore ? ' (ignore_failure)' : ''}, child ${condition}: ${runs ? 'ready' : 'skipped'}`, () => {
        const { spec, state } = setup([
          task('p', { ignore_failure: ignore ?? false }),
          task('c', { depends: [{ task: 'p', conditions: [condition] }] }),
        ]);
        finish(state, 'p', status);
        const ready = advance(spec, state, T1);
        if (runs) {
          expect(ready).toEqual(['c']);
          expect(statusOf(state, 'c')).toBe('pending');
          expect(state.tasks.c?.reason).toBeNull();
        } else {
          expect(ready).toEqual([]);
          expect(statusOf(state, 'c')).toBe('skipped');
          expect(state.tasks.c?.finishedAt).toBe(T1);
          expect(state.tasks.c?.reason).toBe(`"p" ended ${status}; this task runs ${condition}`);
        }
      });
    }
  }

  it('a plain string dependency means on_success', () => {
    const { spec, state } = setup([task('p'), task('c', { depends: ['p'] })]);
    finish(state, 'p', 'failed');
    expect(advance(spec, state, T1)).toEqual([]);
    expect(statusOf(state, 'c')).toBe('skipped');
    expect(state.tasks.c?.reason).toBe('"p" ended failed; this task runs on_success');
  });

  it('several conditions: any of them holding is enough', () => {
    const { spec, state } = setup([
      task('p'),
      task('c', { depends: [{ task: 'p', conditions: ['on_success', 'on_failure'] }] }),
    ]);
    finish(state, 'p', 'failed');
    expect(advance(spec, state, T1)).toEqual(['c']);
  });

  it('every parent must hold: one failed parent skips the child even with others still running', () => {
    const { spec, state } = setup([task('a'), task('b'), task('c', { depends: ['a', 'b'] })]);
    finish(state, 'a', 'failed');
    state.tasks.b!.status = 'running';
    expect(advance(spec, state, T1)).toEqual([]);
    expect(statusOf(state, 'c')).toBe('skipped');
    expect(state.tasks.c?.reason).toBe('"a" ended failed; this task runs on_success');
  });

  it('skips propagate down a chain, and an on_skipped child runs', () => {
    // Spec order is reversed on purpose: propagation must not depend on it.
    const { spec, state } = setup([
      task('cleanup', { depends: [{ task: 'd3', conditions: ['on_skipped'] }] }),
      task('d3', { depends: ['d2'] }),
      task('d2', { depends: ['d1'] }),
      task('d1', { depends: ['root'] }),
      task('root'),
    ]);
    expect(advance(spec, state, T1)).toEqual(['root']);
    finish(state, 'root', 'failed');
    expect(advance(spec, state, T1)).toEqual(['cleanup']);
    expect(['d1', 'd2', 'd3'].map((n) => statusOf(state, n))).toEqual(['skipped', 'skipped', 'skipped']);
    expect(state.tasks.d2?.reason).toBe('"d1" ended skipped; this task runs on_success');
    expect(state.tasks.d1?.reason).toBe('"root" ended failed; this task runs on_success');
  });

  it('an on_failure handler runs, the on_success sibling is skipped, and neither runs on success', () => {
    const failing = setup([
      task('t'),
      task('handler', { depends: [{ task: 't', conditions: ['on_failure'] }] }),
      task('deploy', { depends: ['t'] }),
    ]);
    finish(failing.state, 't', 'failed');
    expect(advance(failing.spec, failing.state, T1)).toEqual(['handler']);
    expect(statusOf(failing.state, 'deploy')).toBe('skipped');

    const passing = setup([
      task('t'),
      task('handler', { depends: [{ task: 't', conditions: ['on_failure'] }] }),
      task('deploy', { depends: ['t'] }),
    ]);
    finish(passing.state, 't', 'success');
    expect(advance(passing.spec, passing.state, T1)).toEqual(['deploy']);
    expect(statusOf(passing.state, 'handler')).toBe('skipped');
  });
});

describe('ignore_failure', () => {
  it('dependents see success, an on_failure handler is skipped, and the run succeeds', () => {
    const { spec, state } = setup([
      task('flaky', { ignore_failure: true }),
      task('next', { depends: ['flaky'] }),
      task('handler', { depends: [{ task: 'flaky', conditions: ['on_failure'] }] }),
    ]);
    finish(state, 'flaky', 'failed');
    expect(advance(spec, state, T1)).toEqual(['next']);
    expect(statusOf(state, 'handler')).toBe('skipped');
    finish(state, 'next', 'success');
    expect(runResult(spec, state, false)).toBe('success');
  });

  it('does not excuse other tasks: a failure without it fails the run', () => {
    const { spec, state } = setup([task('a', { ignore_failure: true }), task('b')]);
    finish(state, 'a', 'failed');
    finish(state, 'b', 'failed');
    expect(runResult(spec, state, false)).toBe('failed');
  });
});

describe('lost', () => {
  it('is not final: dependents of every condition wait, other branches go on', () => {
    const { spec, state } = setup([
      task('deploy'),
      task('rollback', { depends: [{ task: 'deploy', conditions: ['on_failure'] }] }),
      task('announce', { depends: ['deploy'] }),
      task('cleanup', { depends: [{ task: 'deploy', conditions: ['on_skipped'] }] }),
      task('lint'),
      task('docs', { depends: ['lint'] }),
    ]);
    expect(advance(spec, state, T1)).toEqual(['deploy', 'lint']);
    finish(state, 'deploy', 'lost');
    finish(state, 'lint', 'success');
    expect(advance(spec, state, T1)).toEqual(['docs']);
    for (const n of ['rollback', 'announce', 'cleanup']) expect(statusOf(state, n)).toBe('pending');
    finish(state, 'docs', 'success');
    expect(allFinal(state)).toBe(false);
    expect(lostTasks(state)).toEqual(['deploy']);
    expect(unstartedTasks(state)).toEqual(['rollback', 'announce', 'cleanup']);
  });

  it('a lost task the runner reports as succeeded lets its on_success dependents run', () => {
    const { spec, state } = setup([
      task('deploy'),
      task('rollback', { depends: [{ task: 'deploy', conditions: ['on_failure'] }] }),
      task('announce', { depends: ['deploy'] }),
    ]);
    finish(state, 'deploy', 'lost');
    expect(advance(spec, state, T1)).toEqual([]);
    finish(state, 'deploy', 'success');
    expect(advance(spec, state, T1)).toEqual(['announce']);
    expect(statusOf(state, 'rollback')).toBe('skipped');
    expect(lostTasks(state)).toEqual([]);
  });

  it('a lost task failed by a purge runs on_failure dependents and fails the run', () => {
    const { spec, state } = setup([
      task('deploy'),
      task('rollback', { depends: [{ task: 'deploy', conditions: ['on_failure'] }] }),
      task('announce', { depends: ['deploy'] }),
    ]);
    finish(state, 'deploy', 'lost');
    expect(advance(spec, state, T1)).toEqual([]);
    finish(state, 'deploy', 'failed');
    expect(advance(spec, state, T1)).toEqual(['rollback']);
    expect(statusOf(state, 'announce')).toBe('skipped');
    finish(state, 'rollback', 'success');
    expect(runResult(spec, state, false)).toBe('failed');
  });

  it('a run that somehow ends with a lost task did not succeed, even with ignore_failure', () => {
    const { spec, state } = setup([task('a', { ignore_failure: true })]);
    finish(state, 'a', 'lost');
    expect(runResult(spec, state, false)).toBe('failed');
  });
});

describe('needs_approval', () => {
  it('holds a ready task until approvedAt is set', () => {
    const { spec, state } = setup([task('build'), task('deploy', { depends: ['build'], needs_approval: true })]);
    expect(advance(spec, state, T1)).toEqual(['build']);
    finish(state, 'build', 'success');
    expect(advance(spec, state, T1)).toEqual([]);
    expect(statusOf(state, 'deploy')).toBe('pending');
    state.tasks.deploy!.approval.approvedBy = 'alice';
    expect(advance(spec, state, T1)).toEqual([]);
    state.tasks.deploy!.approval.approvedAt = T1;
    expect(advance(spec, state, T1)).toEqual(['deploy']);
  });

  it('a root task needing approval waits too; approval does not override a skip', () => {
    const { spec, state } = setup([
      task('gate', { needs_approval: true }),
      task('p'),
      task('c', { depends: ['p'], needs_approval: true }),
    ]);
    expect(advance(spec, state, T1)).toEqual(['p']);
    finish(state, 'p', 'failed');
    state.tasks.c!.approval.approvedAt = T1;
    expect(advance(spec, state, T1)).toEqual([]);
    expect(statusOf(state, 'c')).toBe('skipped');
    expect(statusOf(state, 'gate')).toBe('pending');
  });
});

describe('runResult', () => {
  it('success when every task succeeded or was skipped', () => {
    const { spec, state } = setup([task('a'), task('b')]);
    finish(state, 'a', 'success');
    finish(state, 'b', 'skipped');
    expect(runResult(spec, state, false)).toBe('success');
  });

  it('failed when a task failed', () => {
    const { spec, state } = setup([task('a'), task('b')]);
    finish(state, 'a', 'success');
    finish(state, 'b', 'failed');
    expect(runResult(spec, state, false)).toBe('failed');
  });

  it('stopped wins over failed and success', () => {
    const { spec, state } = setup([task('a'), task('b'), task('c')]);
    expect(runResult(spec, state, true)).toBe('stopped');
    finish(state, 'a', 'failed');
    finish(state, 'b', 'lost');
    finish(state, 'c', 'cancelled');
    expect(runResult(spec, state, true)).toBe('stopped');
    expect(runResult(spec, state, false)).toBe('failed');
  });
});
