import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = resolve(__dirname, '../../bin/runfleet');
const cwd = mkdtempSync(join(tmpdir(), 'runfleet-cli-validate-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function runfleet(...args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|RUNFLEET_)/.test(k)));
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function runFile(name: string, spec: unknown): string {
  const path = join(cwd, name);
  writeFileSync(path, typeof spec === 'string' ? spec : JSON.stringify(spec, null, 2));
  return path;
}

/** Validates a file that must fail; returns the problem lines printed. */
function problems(name: string, spec: unknown): string[] {
  const path = runFile(name, spec);
  const r = runfleet('validate', path);
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines[0]).toBe(`runfleet: invalid run file ${path}:`);
  expect(r.stderr).not.toMatch(/\n\s+at /); // a user error has no stack
  return lines.slice(1).map((l) => l.trim());
}

const task = (name: string, extra: Record<string, unknown> = {}) => ({ name, steps: [`echo ${name}`], ...extra });

describe('runfleet validate', () => {
  it('accepts a valid file and starts nothing', () => {
    const path = runFile(
      'ok.yaml',
      'name: ci\ntasks:\n  - name: build\n    steps: [make]\n  - name: test\n    steps: [make test]\n    depends: [build]\n',
    );
    const r = runfleet('validate', path);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ok, run "ci" in /default with 2 tasks');
    expect(r.stderr).toBe('');
  });

  it('names duplicate task names', () => {
    expect(problems('dup.json', { name: 'r', tasks: [task('build'), task('build')] })).toEqual([
      'tasks.build.name: duplicate task name "build"',
    ]);
  });

  it('names an unknown dependency with its task and index', () => {
    expect(
      problems('unknown.json', { name: 'r', tasks: [task('build'), task('test', { depends: ['build', 'biuld'] })] }),
    ).toEqual(['tasks.test.depends[1]: unknown task "biuld"']);
  });

  it('names a self-dependency', () => {
    expect(problems('self.json', { name: 'r', tasks: [task('lint', { depends: [{ task: 'lint' }] })] })).toEqual([
      'tasks.lint.depends[0]: task "lint" depends on itself',
    ]);
  });

  it('prints a cycle as a -> b -> a', () => {
    const lines = problems('cycle.json', {
      name: 'r',
      tasks: [task('a', { depends: ['b'] }), task('b', { depends: ['a'] })],
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tasks\.(a|b)\.depends: dependency cycle: (a -> b -> a|b -> a -> b)$/);
  });

  it('prints a longer cycle through every task in it', () => {
    const lines = problems(
      'cycle3.yaml',
      [
        'name: r',
        'tasks:',
        '  - {name: a, steps: [x], depends: [c]}',
        '  - {name: b, steps: [x], depends: [a]}',
        '  - {name: c, steps: [x], depends: [b]}',
        '  - {name: d, steps: [x], depends: [a]}',
      ].join('\n'),
    );
    expect(lines).toHaveLength(1);
    const cycle = /dependency cycle: (.*)$/.exec(lines[0] ?? '')?.[1]?.split(' -> ') ?? [];
    expect(cycle).toHaveLength(4);
    expect(cycle[0]).toBe(cycle[3]);
    expect([...cycle.slice(0, 3)].sort()).toEqual(['a', 'b', 'c']);
  });

  it('rejects an empty run', () => {
    expect(problems('empty.json', { name: 'r', tasks: [] })).toEqual(['tasks: a run needs at least one task']);
  });

  it('names an unknown field with its task', () => {
    expect(problems('field.json', { name: 'r', tasks: [task('build', { command: 'make' })] })).toEqual([
      'tasks.build: unknown field "command"',
    ]);
  });

  it('names an unknown top-level field', () => {
    expect(problems('top.json', { name: 'r', taks: [], tasks: [task('a')] })).toEqual(['(run): unknown field "taks"']);
  });

  it('rejects more tasks than the limit', () => {
    const tasks = Array.from({ length: 10_001 }, (_, i) => task(`t${i}`));
    expect(problems('many.json', { name: 'r', tasks })).toEqual(['tasks: a run has at most 10000 tasks']);
  });

  it('lists every problem of a file, one a line', () => {
    const lines = problems('several.json', {
      name: '',
      tasks: [task('build', { timeout: '5x' }), task('test', { steps: [] }), task('deploy', { driver: 'docker' })],
    });
    expect(lines).toContain('name: a run needs a name');
    expect(lines.some((l) => l.startsWith('tasks.build.timeout: ') && l.includes('"5x"'))).toBe(true);
    expect(lines).toContain('tasks.deploy.image: the docker driver needs an image');
    expect(lines).toContain('tasks.test.steps: a task needs at least one step');
  });

  it('reports a YAML syntax error with line and column', () => {
    const path = runFile('syntax.yaml', 'name: x\ntasks:\n  - name: a\n    steps: [echo\n');
    const r = runfleet('validate', path);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`runfleet: cannot parse run file ${path}:`);
    expect(r.stderr).toMatch(/line \d+, column \d+: YAML: /);
  });

  it('names a missing file', () => {
    const r = runfleet('validate', 'does-not-exist.yaml');
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('runfleet: cannot read run file does-not-exist.yaml: no such file');
  });
});
