import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = resolve(__dirname, '../../bin/runfleet');
const cwd = mkdtempSync(join(tmpdir(), 'runfleet-cli-schema-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function runfleet(...args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|RUNFLEET_)/.test(k)));
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Schema {
  $schema?: string;
  title?: string;
  type?: string;
  required?: string[];
  additionalProperties?: unknown;
  properties?: Record<string, Schema & { items?: Schema; anyOf?: Schema[]; enum?: string[]; default?: unknown }>;
  items?: Schema;
}

describe('runfleet schema', () => {
  const r = runfleet('schema');
  const schema = JSON.parse(r.stdout) as Schema;

  it('exits 0 and prints only JSON', () => {
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().startsWith('{')).toBe(true);
  });

  it('is a draft 2020-12 JSON Schema with a title', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.title).toBe('Runfleet run file');
    expect(schema.type).toBe('object');
    expect(schema.required).toEqual(['name', 'tasks']);
    expect(schema.additionalProperties).toBe(false);
  });

  it('describes tasks and their dependencies (input side: defaults are optional)', () => {
    const tasks = schema.properties?.tasks;
    expect(tasks?.type).toBe('array');
    expect(tasks?.items?.type).toBe('object');
    const task = tasks?.items as Schema;
    expect(task.required).toEqual(['name', 'steps']);
    expect(task.additionalProperties).toBe(false);
    const depends = task.properties?.depends;
    expect(depends?.type).toBe('array');
    expect(depends?.default).toEqual([]);
    const forms =
      depends?.items?.properties === undefined ? ((depends?.items as { anyOf?: Schema[] }).anyOf ?? []) : [];
    expect(forms.map((f) => f.type)).toEqual(['string', 'object']);
    const conditions = forms[1]?.properties?.conditions as { items?: { enum?: string[] } } | undefined;
    expect(conditions?.items?.enum).toEqual(['on_success', 'on_failure', 'on_skipped']);
    expect(task.properties?.driver?.enum).toEqual(['process', 'docker', 'kubernetes']);
  });
});
