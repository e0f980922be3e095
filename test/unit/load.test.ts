import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunfleetError } from '../../src/errors';
import { loadRunSpecFile } from '../../src/spec/load';

const dir = mkdtempSync(join(tmpdir(), 'runfleet-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function loadError(path: string): Promise<RunfleetError> {
  const err: unknown = await loadRunSpecFile(path).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RunfleetError);
  return err as RunfleetError;
}

describe('loadRunSpecFile', () => {
  it('reads a YAML file, applies defaults and keeps the raw input', async () => {
    const path = file(
      'ok.yaml',
      [
        'name: ci',
        'group: /project/42',
        'tasks:',
        '  - name: build',
        '    steps: [make]',
        '    timeout: 90',
        '  - name: test',
        '    steps: [make test]',
        '    depends: [build]',
      ].join('\n'),
    );
    const loaded = await loadRunSpecFile(path);
    expect(loaded.file).toBe(path);
    expect(loaded.spec.name).toBe('ci');
    expect(loaded.spec.group).toBe('/project/42');
    expect(loaded.spec.tasks.map((t) => t.name)).toEqual(['build', 'test']);
    expect(loaded.spec.tasks[0]?.timeout).toBe(90_000);
    expect(loaded.spec.tasks[1]?.pool).toBe('default');
    // The raw input keeps the file's seconds: the workflow parses it again.
    expect((loaded.input as { tasks: { timeout?: number }[] }).tasks[0]?.timeout).toBe(90);
  });

  it('reads a JSON file', async () => {
    const path = file('ok.json', JSON.stringify({ name: 'json-run', tasks: [{ name: 'only', steps: ['true'] }] }));
    const loaded = await loadRunSpecFile(path);
    expect(loaded.spec.name).toBe('json-run');
    expect(loaded.spec.group).toBe('/default');
  });

  it('tries JSON then YAML for a file without a known extension', async () => {
    const json = await loadRunSpecFile(file('run-json', '{"name":"a","tasks":[{"name":"t","steps":["x"]}]}'));
    expect(json.spec.name).toBe('a');
    const yaml = await loadRunSpecFile(file('run-yaml', 'name: b\ntasks:\n  - name: t\n    steps: [x]\n'));
    expect(yaml.spec.name).toBe('b');
  });

  it('reports a YAML syntax error with its line and column', async () => {
    const path = file('syntax.yaml', 'name: x\ntasks:\n  - name: a\n    steps: [echo\n  - name: b\n');
    const err = await loadError(path);
    expect(err.code).toBe('InvalidRunSpec');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/line \d+, column \d+: YAML: /);
  });

  it('reports invalid JSON naming the file', async () => {
    const path = file('broken.json', '{"name": "x", ');
    const err = await loadError(path);
    expect(err.code).toBe('InvalidRunSpec');
    expect(err.message).toContain(path);
    expect(err.message).toContain('not valid JSON');
  });

  it('lists every problem, each naming the task and the field', async () => {
    const path = file(
      'problems.yaml',
      [
        'name: demo',
        'colour: red',
        'tasks:',
        '  - name: build',
        '    steps: []',
        '    timeout: 5x',
        '  - name: deploy',
        '    steps: [./deploy]',
        '    driver: docker',
      ].join('\n'),
    );
    const err = await loadError(path);
    expect(err.code).toBe('InvalidRunSpec');
    const lines = err.message.split('\n');
    expect(lines[0]).toBe(`invalid run file ${path}:`);
    expect(lines).toContain('  tasks.build.steps: a task needs at least one step');
    expect(lines.some((l) => l.startsWith('  tasks.build.timeout: ') && l.includes('"5x"'))).toBe(true);
    expect(lines).toContain('  tasks.deploy.image: the docker driver needs an image');
    expect(lines).toContain('  (run): unknown field "colour"');
    expect(lines).toHaveLength(5);
    expect((err.details as { problems: unknown[] }).problems).toHaveLength(4);
  });

  it('reports graph problems: duplicates, unknown and self dependencies', async () => {
    const path = file(
      'graph.yaml',
      [
        'name: g',
        'tasks:',
        '  - name: a',
        '    steps: [x]',
        '    depends: [a, ghost]',
        '  - name: a',
        '    steps: [y]',
      ].join('\n'),
    );
    const err = await loadError(path);
    expect(err.message).toContain('tasks.a.name: duplicate task name "a"');
    expect(err.message).toContain('tasks.a.depends[0]: task "a" depends on itself');
    expect(err.message).toContain('tasks.a.depends[1]: unknown task "ghost"');
  });

  it('names a missing file', async () => {
    const err = await loadError(join(dir, 'nope.yaml'));
    expect(err.code).toBe('InvalidRunSpec');
    expect(err.message).toContain('nope.yaml: no such file');
  });
});
