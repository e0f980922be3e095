/**
 * The incremental DAG walk (`advanceAfter`) against the full one (`advance`), on random DAGs
 * driven through random runs: the same skips (status, reason, time) and the same tasks newly
 * ready, in the same order, at every step.
 */
import { describe, expect, it } from 'vitest';
import { advance, advanceAfter, dagIndex, initialRunState } from '../../src/dag/engine';
import type { RunSpecInput } from '../../src/spec/schema';
import { validateRunSpec } from '../../src/spec/validate';
import { DEPEND_CONDITIONS, type RunState, type TaskStatus } from '../../src/types';

const T0 = '2025-01-01T00:00:00.000Z';

type TaskInput = RunSpecInput['tasks'][number];

/** A small seeded PRNG (mulberry32): a failing seed replays the same run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random DAG: parents drawn among earlier tasks, then the spec order shuffled (not topological). */
function randomSpec(random: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const n = 1 + Math.floor(random() * 30);
  const tasks: TaskInput[] = [];
  for (let i = 0; i < n; i++) {
    const depends: TaskInput['depends'] = [];
    for (let p = 0; p < i; p++) {
      if (random() > 0.25) continue;
      const conditions = DEPEND_CONDITIONS.filter(() => random() < 0.5);
      depends.push(conditions.length === 0 ? `t${p}` : { task: `t${p}`, conditions });
    }
    tasks.push({
      name: `t${i}`,
      steps: ['true'],
      depends,
      ignore_failure: random() < 0.2,
      needs_approval: random() < 0.15,
    });
  }
  for (let i = tasks.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [tasks[i], tasks[j]] = [tasks[j] as TaskInput, tasks[i] as TaskInput];
  }
  return { spec: validateRunSpec({ name: 'random', tasks }), pick };
}

const FINAL: TaskStatus[] = ['success', 'failed', 'cancelled'];

/**
 * One random run: the world changes both states alike, as the run workflow would (tasks start,
 * end, get lost and given back, retried, approved, cancelled), then the full walk advances one
 * and the incremental walk the other, told which tasks changed.
 */
function runBoth(seed: number): number {
  const random = prng(seed);
  const { spec, pick } = randomSpec(random);
  const index = dagIndex(spec);
  const full: RunState = initialRunState('run', spec, T0);
  const inc: RunState = structuredClone(full);
  // What the workflow has dispatched (run.dispatched): the same for both, as long as they agree.
  const dispatched = new Set<string>();
  const names = spec.tasks.map((t) => t.name);

  let ready = advance(spec, full, T0);
  expect(advance(spec, inc, T0, index)).toEqual(ready);
  let steps = 0;
  for (let step = 1; step <= 200; step++) {
    steps = step;
    const now = new Date(Date.parse(T0) + step * 1000).toISOString();
    for (const name of ready) dispatched.add(name);
    const changed: string[] = [];
    const set = (name: string, status: TaskStatus) => {
      for (const state of [full, inc]) {
        const t = state.tasks[name] as RunState['tasks'][string];
        t.status = status;
        if (FINAL.includes(status)) t.finishedAt = now;
      }
    };
    // One to three changes before the next walk (several may land in one workflow task).
    const changes = 1 + Math.floor(random() * 3);
    for (let c = 0; c < changes; c++) {
      const status = (name: string) => (full.tasks[name] as RunState['tasks'][string]).status;
      const queued = [...dispatched].filter((n) => status(n) === 'pending');
      const started = [...dispatched].filter((n) => status(n) === 'running');
      const lost = names.filter((n) => status(n) === 'lost');
      const waiting = names.filter(
        (n) => status(n) === 'pending' && full.tasks[n]?.approval.required && !full.tasks[n]?.approval.approvedAt,
      );
      const cancellable = names.filter((n) => status(n) === 'pending');
      const r = random();
      if (r < 0.2 && queued.length > 0) {
        set(pick(queued), 'running'); // reserved: not a DAG change
      } else if (r < 0.55 && started.length > 0) {
        const name = pick(started);
        set(name, pick(FINAL));
        changed.push(name);
      } else if (r < 0.62 && started.length > 0) {
        set(pick(started), 'lost'); // not final: not a DAG change
      } else if (r < 0.7 && lost.length > 0) {
        const name = pick(lost);
        if (random() < 0.5) {
          set(name, pick(FINAL)); // its runner reported, or it was purged or cancelled
        } else {
          set(name, 'pending'); // given back: dispatched again (ctx.redispatch)
          dispatched.delete(name);
        }
        changed.push(name);
      } else if (r < 0.76 && started.length > 0) {
        // A failure retried: pending while it waits, then dispatched again (ctx.redispatch).
        const name = pick(started);
        set(name, 'pending');
        dispatched.delete(name);
        changed.push(name);
      } else if (r < 0.86 && waiting.length > 0) {
        const name = pick(waiting);
        for (const state of [full, inc]) (state.tasks[name] as RunState['tasks'][string]).approval.approvedAt = now;
        changed.push(name);
      } else if (r < 0.9 && cancellable.length > 0) {
        const name = pick(cancellable);
        set(name, 'cancelled');
        changed.push(name);
      }
    }
    const fromFull = advance(spec, full, now).filter((n) => !dispatched.has(n));
    const fromInc = advanceAfter(index, inc, now, changed).filter((n) => !dispatched.has(n));
    expect(fromInc, `seed ${seed}, step ${step}`).toEqual(fromFull);
    expect(inc, `seed ${seed}, step ${step}`).toEqual(full);
    ready = fromFull;
    const open = names.some(
      (n) => !FINAL.includes(full.tasks[n]?.status as TaskStatus) && full.tasks[n]?.status !== 'skipped',
    );
    if (!open) break;
  }
  return steps;
}

describe('advanceAfter: the incremental walk', () => {
  it('applies the same skips and readies the same tasks, in order, as a full walk (random DAGs and runs)', () => {
    let steps = 0;
    for (let seed = 1; seed <= 400; seed++) steps += runBoth(seed);
    // The runs went somewhere: many steps over all.
    expect(steps).toBeGreaterThan(2_000);
  });

  it('skips propagate through dependents listed before their parents, with the full walk’s reasons', () => {
    const spec = validateRunSpec({
      name: 'r',
      tasks: [
        { name: 'cleanup', steps: ['true'], depends: [{ task: 'd3', conditions: ['on_skipped'] }] },
        { name: 'd3', steps: ['true'], depends: ['d2', 'other'] },
        { name: 'd2', steps: ['true'], depends: ['d1'] },
        { name: 'd1', steps: ['true'], depends: ['root'] },
        { name: 'other', steps: ['true'], depends: ['root'] },
        { name: 'root', steps: ['true'] },
      ],
    });
    const index = dagIndex(spec);
    const full = initialRunState('run', spec, T0);
    expect(advance(spec, full, T0, index)).toEqual(['root']);
    const inc = structuredClone(full);
    for (const state of [full, inc]) Object.assign(state.tasks.root ?? {}, { status: 'failed', finishedAt: T0 });
    expect(advanceAfter(index, inc, T0, ['root'])).toEqual(advance(spec, full, T0, index));
    expect(inc).toEqual(full);
    expect(inc.tasks.cleanup?.status).toBe('pending');
    expect(inc.tasks.d3?.reason).toBe(full.tasks.d3?.reason);
  });

  it('looks at nothing else: no change, nothing ready, nothing skipped', () => {
    const spec = validateRunSpec({ name: 'r', tasks: [{ name: 'a', steps: ['true'] }] });
    const state = initialRunState('run', spec, T0);
    const before = structuredClone(state);
    expect(advanceAfter(dagIndex(spec), state, T0, [])).toEqual([]);
    expect(state).toEqual(before);
  });

  it('a task that went back to pending is ready again on its own', () => {
    const spec = validateRunSpec({
      name: 'r',
      tasks: [
        { name: 'a', steps: ['true'] },
        { name: 'b', steps: ['true'], depends: ['a'] },
      ],
    });
    const index = dagIndex(spec);
    const state = initialRunState('run', spec, T0);
    expect(advance(spec, state, T0, index)).toEqual(['a']);
    expect(advanceAfter(index, state, T0, ['a'])).toEqual(['a']);
  });
});
