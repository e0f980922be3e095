/** The run spec: schema defaults, every validation rule with its exact path and message, the examples. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { RunfleetError } from '../../src/errors';
import { advance, initialRunState, runResult } from '../../src/dag/engine';
import { LIMITS, type RunSpec } from '../../src/spec/schema';
import { checkRunSpec, findCycle, validateRunSpec, type SpecProblem } from '../../src/spec/validate';

type Obj = Record<string, unknown>;
const task = (name: string, extra: Obj = {}): Obj => ({ name, steps: ['true'], ...extra });
const run = (tasks: Obj[], extra: Obj = {}): Obj => ({ name: 'r', tasks, ...extra });

/** The problems of an invalid spec (fails the test when the spec is valid). */
function problems(input: unknown): SpecProblem[] {
  const result = checkRunSpec(input);
  if (result.ok) throw new Error(`expected an invalid spec, got a valid one: ${JSON.stringify(input).slice(0, 80)}`);
  return result.problems;
}

describe('defaults', () => {
  it('fills in group, driver, pool, depends, flags; timeout stays unset', () => {
    const spec = validateRunSpec(run([task('a'), task('b', { depends: ['a'] })]));
    expect(spec.group).toBe('/default');
    expect(spec.env).toBeUndefined();
    const [a, b] = spec.tasks;
    expect(a).toMatchObject({
      name: 'a',
      steps: ['true'],
      driver: 'process',
      pool: 'default',
      depends: [],
      ignore_failure: false,
      needs_approval: false,
      idempotent: false,
    });
    expect(a?.timeout).toBeUndefined();
    expect(a?.image).toBeUndefined();
    expect(b?.depends).toEqual(['a']);
  });

  it('defaults the conditions of an object dependency to on_success', () => {
    const spec = validateRunSpec(run([task('a'), task('b', { depends: [{ task: 'a' }] })]));
    expect(spec.tasks[1]?.depends).toEqual([{ task: 'a', conditions: ['on_success'] }]);
  });

  it('keeps explicit values and converts durations to milliseconds', () => {
    const spec = validateRunSpec(
      run(
        [
          task('a', { pool: 'gpu', timeout: '1h30m', env: { A_1: 'x' } }),
          task('b', {
            driver: 'docker',
            image: 'alpine:3',
            timeout: 90,
            depends: [{ task: 'a', conditions: ['on_failure', 'on_skipped'] }],
          }),
          task('c', {
            steps: [{ name: 'hello', run: 'echo hi' }],
            ignore_failure: true,
            needs_approval: true,
            idempotent: true,
          }),
        ],
        { group: '/project/42/main', env: { CI: '1' } },
      ),
    );
    expect(spec.group).toBe('/project/42/main');
    expect(spec.env).toEqual({ CI: '1' });
    expect(spec.tasks[0]).toMatchObject({ pool: 'gpu', timeout: 5_400_000, env: { A_1: 'x' } });
    expect(spec.tasks[1]).toMatchObject({ driver: 'docker', image: 'alpine:3', timeout: 90_000 });
    expect(spec.tasks[1]?.depends).toEqual([{ task: 'a', conditions: ['on_failure', 'on_skipped'] }]);
    expect(spec.tasks[2]).toMatchObject({
      steps: [{ name: 'hello', run: 'echo hi' }],
      ignore_failure: true,
      needs_approval: true,
      idempotent: true,
    });
  });

  it('accepts a timeout of exactly 24h', () => {
    expect(validateRunSpec(run([task('a', { timeout: '24h' })])).tasks[0]?.timeout).toBe(LIMITS.maxTimeoutMs);
    expect(validateRunSpec(run([task('a', { timeout: '1d' })])).tasks[0]?.timeout).toBe(LIMITS.maxTimeoutMs);
  });
});

describe('validateRunSpec errors', () => {
  it('throws a RunfleetError InvalidRunSpec listing every problem, one per line', () => {
    const input = run([task('a', { depends: ['nope'] }), task('a')]);
    let caught: unknown;
    try {
      validateRunSpec(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RunfleetError);
    const err = caught as RunfleetError;
    expect(err.code).toBe('InvalidRunSpec');
    expect(err.isUserError).toBe(true);
    expect(err.message).toBe(
      [
        'invalid run spec:',
        '  tasks.a.name: duplicate task name "a"',
        '  tasks.a.depends[0]: unknown task "nope"',
      ].join('\n'),
    );
    expect(err.details).toEqual({
      problems: [
        { path: 'tasks.a.name', message: 'duplicate task name "a"' },
        { path: 'tasks.a.depends[0]', message: 'unknown task "nope"' },
      ],
    });
  });
});

describe('graph rules', () => {
  it('duplicate task names', () => {
    expect(problems(run([task('a'), task('b'), task('a')]))).toEqual([
      { path: 'tasks.a.name', message: 'duplicate task name "a"' },
    ]);
  });

  it('unknown dependency', () => {
    expect(
      problems(run([task('a'), task('b', { depends: ['a', { task: 'ghost', conditions: ['on_failure'] }] })])),
    ).toEqual([{ path: 'tasks.b.depends[1]', message: 'unknown task "ghost"' }]);
  });

  it('self-dependency', () => {
    expect(problems(run([task('a', { depends: ['a'] })]))).toEqual([
      { path: 'tasks.a.depends[0]', message: 'task "a" depends on itself' },
    ]);
  });

  it('a parent listed twice', () => {
    expect(
      problems(run([task('a'), task('b', { depends: ['a', { task: 'a', conditions: ['on_failure'] }] })])),
    ).toEqual([{ path: 'tasks.b.depends[1]', message: '"a" is listed twice' }]);
  });

  it('a cycle, printed in dependency order (each task after the one it depends on)', () => {
    // b depends on a, c on b, a on c.
    const input = run([task('a', { depends: ['c'] }), task('b', { depends: ['a'] }), task('c', { depends: ['b'] })]);
    expect(problems(input)).toEqual([{ path: 'tasks.a.depends', message: 'dependency cycle: a -> b -> c -> a' }]);
  });

  it('a cycle reached from a task outside it', () => {
    // x depends on p; p -> q -> p.
    const input = run([task('x', { depends: ['p'] }), task('p', { depends: ['q'] }), task('q', { depends: ['p'] })]);
    expect(problems(input)).toEqual([{ path: 'tasks.p.depends', message: 'dependency cycle: p -> q -> p' }]);
  });

  it('findCycle returns null for a DAG (a diamond is not a cycle)', () => {
    const spec = validateRunSpec(
      run([
        task('a'),
        task('b', { depends: ['a'] }),
        task('c', { depends: ['a'] }),
        task('d', { depends: ['b', 'c'] }),
      ]),
    );
    expect(findCycle(spec)).toBeNull();
  });

  it('an empty run', () => {
    expect(problems(run([]))).toEqual([{ path: 'tasks', message: 'a run needs at least one task' }]);
  });

  it('a run without tasks or name', () => {
    expect(problems({ name: 'r' })).toEqual([{ path: 'tasks', message: 'is required' }]);
    expect(problems({ tasks: [task('a')] })).toEqual([{ path: 'name', message: 'is required' }]);
  });
});

describe('schema rules', () => {
  it(`too many tasks (more than ${LIMITS.maxTasks})`, () => {
    const tasks = Array.from({ length: LIMITS.maxTasks + 1 }, (_, i) => task(`t${i}`));
    expect(problems(run(tasks))).toEqual([{ path: 'tasks', message: `a run has at most ${LIMITS.maxTasks} tasks` }]);
    expect(checkRunSpec(run(tasks.slice(0, LIMITS.maxTasks))).ok).toBe(true);
  });

  it(`too many steps (more than ${LIMITS.maxStepsPerTask})`, () => {
    const steps = Array.from({ length: LIMITS.maxStepsPerTask + 1 }, () => 'true');
    expect(problems(run([task('a', { steps })]))).toEqual([
      { path: 'tasks.a.steps', message: `at most ${LIMITS.maxStepsPerTask} steps` },
    ]);
    expect(checkRunSpec(run([task('a', { steps: steps.slice(1) })])).ok).toBe(true);
  });

  it('a task without steps', () => {
    expect(problems(run([task('a', { steps: [] })]))).toEqual([
      { path: 'tasks.a.steps', message: 'a task needs at least one step' },
    ]);
  });

  it('an unknown field at run level', () => {
    expect(problems(run([task('a')], { taks: [] }))).toEqual([{ path: '(run)', message: 'unknown field "taks"' }]);
  });

  it('unknown fields at task level, named by the task', () => {
    expect(problems(run([task('a'), task('build', { needs: ['a'], retries: 2 })]))).toEqual([
      { path: 'tasks.build', message: 'unknown fields "needs", "retries"' },
    ]);
  });

  it('a task without a usable name is named by its index', () => {
    expect(problems(run([task('a'), { steps: ['true'] }]))).toEqual([
      { path: 'tasks[1].name', message: 'is required' },
    ]);
  });

  it('an empty step, an unknown step field, a bad dependency name', () => {
    expect(problems(run([task('a', { steps: ['echo', ''] })]))).toEqual([
      { path: 'tasks.a.steps[1]', message: 'a step is a non-empty shell command' },
    ]);
    expect(problems(run([task('a', { steps: [{ run: 'x', nme: 'typo' }] })]))).toEqual([
      { path: 'tasks.a.steps[0]', message: 'unknown field "nme"' },
    ]);
    expect(problems(run([task('a'), task('b', { depends: ['-a'] })]))).toEqual([
      {
        path: 'tasks.b.depends[0]',
        message: 'must be 1-63 letters, digits, "_", "." or "-", starting with a letter or digit',
      },
    ]);
  });

  // A misspelt condition must say which conditions exist; today the union's bare "Invalid input" comes out.
  it('an unknown dependency condition names the valid ones', () => {
    const [problem, ...rest] = problems(
      run([task('a'), task('b', { depends: [{ task: 'a', conditions: ['on_sucess'] }] })]),
    );
    expect(rest).toEqual([]);
    expect(problem?.path).toMatch(/^tasks\.b\.depends\[0\]/);
    expect(problem?.message).toMatch(/on_success.*on_failure.*on_skipped/);
  });

  it('docker without image', () => {
    expect(problems(run([task('a', { driver: 'docker' })]))).toEqual([
      { path: 'tasks.a.image', message: 'the docker driver needs an image' },
    ]);
  });

  it('image without docker', () => {
    expect(problems(run([task('a', { image: 'alpine' })]))).toEqual([
      { path: 'tasks.a.image', message: 'image is only for the docker and kubernetes drivers' },
    ]);
  });

  it('pull: one of the three policies, and only for the docker driver', () => {
    expect(
      validateRunSpec(run([task('a', { driver: 'docker', image: 'alpine', pull: 'always' })])).tasks[0]?.pull,
    ).toBe('always');
    const [bad] = problems(run([task('a', { driver: 'docker', image: 'alpine', pull: 'sometimes' })]));
    expect(bad?.path).toBe('tasks.a.pull');
    expect(bad?.message).toMatch(/if-not-present.*always.*never/);
    expect(problems(run([task('a', { pull: 'never' })]))).toEqual([
      { path: 'tasks.a.pull', message: 'pull is only for the docker and kubernetes drivers' },
    ]);
    // Credentials never come from a run file.
    expect(problems(run([task('a', { driver: 'docker', image: 'alpine', registry_auth: 'x' })]))).toEqual([
      expect.objectContaining({ path: 'tasks.a', message: expect.stringMatching(/registry_auth/) }),
    ]);
  });

  it('a fleet resource class: named fields checked, and no pool beside it', () => {
    expect(validateRunSpec(run([task('a', { fleet: { name: 'ci', class: 'small' } })])).tasks[0]?.fleet).toEqual({
      name: 'ci',
      class: 'small',
    });
    expect(problems(run([task('a', { fleet: { name: 'c i', class: 'small', size: 2 } })]))).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'tasks.a.fleet.name', message: expect.stringMatching(/fleet name/) }),
        expect.objectContaining({ path: 'tasks.a.fleet' }),
      ]),
    );
    expect(problems(run([task('a', { fleet: { name: 'ci', class: 'small' }, pool: 'linux' })]))).toEqual([
      { path: 'tasks.a.pool', message: expect.stringContaining('runs in its resource class\'s pool ("ci-small")') },
    ]);
  });

  // The schema gives the env key regex its own message; users must see it, not zod's generic text.
  it('a bad environment variable name, in a task and in the run', () => {
    expect(problems(run([task('a', { env: { '1BAD': 'x' } })]))).toEqual([
      { path: 'tasks.a.env.1BAD', message: 'environment variable names are letters, digits and "_"' },
    ]);
    expect(problems(run([task('a')], { env: { 'A-B': 'x' } }))).toEqual([
      { path: 'env.A-B', message: 'environment variable names are letters, digits and "_"' },
    ]);
  });

  it('a bad group path', () => {
    const message = 'must be a path like /project/42/main (segments of letters, digits, "_", "." or "-")';
    for (const group of ['project/42', '/', '/a//b', '/a/', '/a b']) {
      expect(problems(run([task('a')], { group }))).toEqual([{ path: 'group', message }]);
    }
  });

  it('a bad timeout', () => {
    for (const timeout of ['soon', '10', '0s', '-5m', '1 h']) {
      expect(problems(run([task('a', { timeout })]))).toEqual([
        { path: 'tasks.a.timeout', message: `"${timeout}" is not a duration like "90s", "10m" or "1h"` },
      ]);
    }
    expect(problems(run([task('a', { timeout: 0 })]))).toEqual([
      { path: 'tasks.a.timeout', message: '"0" is not a duration like "90s", "10m" or "1h"' },
    ]);
  });

  it('a timeout over 24h', () => {
    for (const timeout of ['25h', '24h1s', 86_401]) {
      expect(problems(run([task('a', { timeout })]))).toEqual([
        { path: 'tasks.a.timeout', message: 'must be at most 24h' },
      ]);
    }
  });

  it('an oversized spec', () => {
    // Steps of 64 KiB: each within its limit, the whole over the spec limit.
    const big = 'x'.repeat(LIMITS.maxStepBytes - 10);
    const count = Math.ceil(LIMITS.maxSpecBytes / LIMITS.maxStepBytes) + 1;
    const input = run([task('a', { steps: Array.from({ length: count }, () => `echo ${big}`) })]);
    const size = JSON.stringify(input).length;
    expect(size).toBeGreaterThan(LIMITS.maxSpecBytes);
    expect(problems(input)).toEqual([
      { path: '(run)', message: `the spec is ${size} bytes; the limit is ${LIMITS.maxSpecBytes}` },
    ]);
  });

  // The limit exists because the spec travels as one Temporal payload, which is measured in
  // UTF-8 bytes. Measuring UTF-16 code units would let a spec three times the limit through.
  it('measures the spec size in UTF-8 bytes, not characters', () => {
    const cjk = '漢'.repeat(60_000); // 60,000 characters, 180,000 bytes: under the step limit
    const count = Math.ceil(LIMITS.maxSpecBytes / 180_000) + 1;
    const input = run([task('a', { steps: Array.from({ length: count }, () => `echo ${cjk}`) })]);
    const bytes = Buffer.byteLength(JSON.stringify(input), 'utf8');
    expect(JSON.stringify(input).length).toBeLessThan(LIMITS.maxSpecBytes);
    expect(bytes).toBeGreaterThan(LIMITS.maxSpecBytes);
    expect(problems(input)).toEqual([
      { path: '(run)', message: `the spec is ${bytes} bytes; the limit is ${LIMITS.maxSpecBytes}` },
    ]);
  });
});

describe('large graphs', () => {
  const chain = (n: number, reversed: boolean): Obj[] =>
    Array.from({ length: n }, (_, i) => {
      // forward: t1 depends on t0 ...; reversed: t0 depends on t1 ... (deepest DFS from the first task)
      if (reversed) return task(`t${i}`, i < n - 1 ? { depends: [`t${i + 1}`] } : {});
      return task(`t${i}`, i > 0 ? { depends: [`t${i - 1}`] } : {});
    });

  it('validates a 1,000-task chain in either order without stack overflow, quickly', () => {
    for (const reversed of [false, true]) {
      const started = performance.now();
      const spec = validateRunSpec(run(chain(LIMITS.maxTasks, reversed)));
      expect(spec.tasks).toHaveLength(LIMITS.maxTasks);
      expect(performance.now() - started).toBeLessThan(2_000);
    }
  });

  it('finds a 1,000-task cycle and prints all of it', () => {
    const tasks = chain(LIMITS.maxTasks, false);
    (tasks[0] as Obj).depends = [`t${LIMITS.maxTasks - 1}`];
    const [problem, ...rest] = problems(run(tasks));
    expect(rest).toEqual([]);
    expect(problem?.path).toBe('tasks.t0.depends');
    const names = problem?.message.replace('dependency cycle: ', '').split(' -> ');
    expect(names).toEqual([...Array.from({ length: LIMITS.maxTasks }, (_, i) => `t${i}`), 't0']);
  });
});

describe('examples', () => {
  const load = (file: string): RunSpec =>
    validateRunSpec(parse(readFileSync(join(__dirname, '../../examples', file), 'utf8')));
  const now = '2025-01-01T00:00:00.000Z';

  /** Plays a run through the engine, each started task ending as `outcome(name)` says. */
  function play(spec: RunSpec, outcome: (name: string) => 'success' | 'failed') {
    const state = initialRunState('r1', spec, now);
    const waves: string[][] = [];
    for (let ready = advance(spec, state, now); ready.length > 0; ready = advance(spec, state, now)) {
      waves.push(ready);
      for (const name of ready) (state.tasks[name] as { status: string }).status = outcome(name);
    }
    return { state, waves, result: runResult(spec, state, false) };
  }

  it('diamond.yaml: checkout -> (build, lint) -> package', () => {
    const spec = load('diamond.yaml');
    expect(spec.name).toBe('diamond');
    expect(spec.group).toBe('/examples/diamond');
    const { waves, result } = play(spec, () => 'success');
    expect(waves).toEqual([['checkout'], ['build', 'lint'], ['package']]);
    expect(result).toBe('success');
  });

  it('on-failure.yaml: the handler runs, deploy is skipped, the run fails', () => {
    const spec = load('on-failure.yaml');
    expect(spec.group).toBe('/examples/on-failure');
    expect(spec.tasks.find((t) => t.name === 'notify-failure')?.depends).toEqual([
      { task: 'test', conditions: ['on_failure'] },
    ]);
    const { state, result } = play(spec, (name) => (name === 'test' ? 'failed' : 'success'));
    const statuses = Object.fromEntries(Object.entries(state.tasks).map(([n, t]) => [n, t.status]));
    expect(statuses).toEqual({
      build: 'success',
      test: 'failed',
      'notify-failure': 'success',
      deploy: 'skipped',
      report: 'success',
    });
    expect(result).toBe('failed');
    // The failing step really fails: it is the second, and exits 1.
    expect(spec.tasks.find((t) => t.name === 'test')?.steps[1]).toMatch(/exit 1$/);
  });

  it('fan-out-50.yaml: prepare -> shard-01..shard-50 -> collect', () => {
    const spec = load('fan-out-50.yaml');
    expect(spec.group).toBe('/examples/fan-out-50');
    const shards = Array.from({ length: 50 }, (_, i) => `shard-${String(i + 1).padStart(2, '0')}`);
    expect(spec.tasks.map((t) => t.name)).toEqual(['prepare', ...shards, 'collect']);
    for (const t of spec.tasks.slice(1, 51)) expect(t.depends).toEqual(['prepare']);
    expect(spec.tasks[51]?.depends).toEqual(shards);
    const { waves, result } = play(spec, () => 'success');
    expect(waves).toEqual([['prepare'], shards, ['collect']]);
    expect(result).toBe('success');
  });
});

describe('secret_env', () => {
  it('names env variables of the run and of a task; a bad name or too many are refused with their path', () => {
    const spec = validateRunSpec(run([task('a', { secret_env: ['TOKEN'] })], { secret_env: ['DEPLOY_KEY'] }));
    expect(spec.secret_env).toEqual(['DEPLOY_KEY']);
    expect(spec.tasks[0]?.secret_env).toEqual(['TOKEN']);
    expect(problems(run([task('a', { secret_env: ['NOT-A-NAME'] })]))).toEqual([
      { path: 'tasks.a.secret_env[0]', message: 'environment variable names are letters, digits and "_"' },
    ]);
    const many = Array.from({ length: LIMITS.maxSecretEnv + 1 }, (_, i) => `S${i}`);
    expect(problems(run([task('a')], { secret_env: many }))).toEqual([
      { path: 'secret_env', message: `at most ${LIMITS.maxSecretEnv} names` },
    ]);
  });
});

describe('artifacts and caches', () => {
  it('gets artifacts only from a task it depends on that declares them; a matrix task means each cell', () => {
    const spec = validateRunSpec(
      run([
        task('build', { artifacts: ['dist/**'], matrix: { os: ['linux', 'mac'] } }),
        task('ship', { depends: ['build'], artifacts_from: ['build'] }),
      ]),
    );
    expect(spec.tasks.find((t) => t.name === 'ship')?.artifacts_from).toEqual(['build-os-linux', 'build-os-mac']);
    expect(problems(run([task('a', { artifacts: ['x'] }), task('b', { artifacts_from: ['a'] })]))).toEqual([
      {
        path: 'tasks.b.artifacts_from[0]',
        message: '"a" is not in depends: a task gets artifacts only from tasks it waits for',
      },
    ]);
    expect(problems(run([task('a'), task('b', { depends: ['a'], artifacts_from: ['a'] })]))).toEqual([
      { path: 'tasks.b.artifacts_from[0]', message: 'task "a" declares no artifacts' },
    ]);
  });

  it('refuses a path that is absolute, climbs out or holds a backslash, and a cache key with other templates', () => {
    expect(problems(run([task('a', { artifacts: ['/etc/passwd', 'a/../../b', 'a\\b'] })]))).toEqual([
      { path: 'tasks.a.artifacts[0]', message: 'must be relative to the workspace' },
      { path: 'tasks.a.artifacts[1]', message: 'must not climb out of the workspace ("..")' },
      { path: 'tasks.a.artifacts[2]', message: 'must not hold a NUL or a backslash' },
    ]);
    expect(problems(run([task('a', { cache: { key: 'deps-{{ env HOME }}', paths: ['node_modules'] } })]))).toEqual([
      { path: 'tasks.a.cache.key', message: 'letters, digits, ".", "_", "-" and {{ hash FILE }}' },
    ]);
    const ok = validateRunSpec(run([task('a', { cache: { key: 'deps-{{ hash package-lock.json }}', paths: ['x'] } })]));
    expect(ok.tasks[0]?.cache).toEqual({ key: 'deps-{{ hash package-lock.json }}', paths: ['x'] });
  });
});
