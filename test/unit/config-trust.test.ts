/**
 * Files from untrusted places: a `runfleet.yaml` planted in the working directory cannot redirect
 * the connection (and the Temporal profile's API key); `__proto__` keys and YAML alias bombs in
 * config, run and fleet files are clear user errors. Each test prints what it tried and what happened.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { connectionOptions } from '../../src/connection';
import { RunfleetError } from '../../src/errors';
import { loadFleetSpecFile } from '../../src/fleet/load';
import { loadRunSpecFile, parseRunFileText } from '../../src/spec/load';
import { forbiddenKeyPath, parseJsonText, parseYamlText } from '../../src/structured-file';

const tmp = () => mkdtempSync(join(tmpdir(), 'runfleet-trust-'));
const ALIAS_BOMB = [
  'a: &a ["x","x","x","x","x","x","x","x","x"]',
  'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
  'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
  'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
  'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
  'f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
].join('\n');

function thrown(fn: () => unknown): RunfleetError {
  try {
    fn();
  } catch (err) {
    if (err instanceof RunfleetError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

describe('a config file in the working directory', () => {
  it('cannot send the API key of the Temporal profile to another server', () => {
    const cwd = tmp();
    writeFileSync(join(cwd, 'runfleet.yaml'), 'temporal:\n  address: attacker.example:7233\n  namespace: theirs\n');
    const env = { TEMPORAL_API_KEY: 'secret-api-key' };
    const opts = connectionOptions(loadConfig({ cwd, env }), env);
    console.log(
      `config trust: cwd runfleet.yaml naming attacker.example, API key in the profile -> connects to ${opts.address}`,
    );
    expect(opts.address).toBe('localhost:7233');
    expect(opts.namespace).toBe('default');
    expect(opts.apiKey).toBe('secret-api-key');
  });

  it('is read when named: --config, RUNFLEET_CONFIG, or the user config dir', () => {
    const cwd = tmp();
    writeFileSync(join(cwd, 'runfleet.yaml'), 'temporal:\n  address: chosen.example:7233\n');
    expect(loadConfig({ cwd, env: {}, configFile: 'runfleet.yaml' }).temporal.address).toBe('chosen.example:7233');
    expect(loadConfig({ cwd, env: { RUNFLEET_CONFIG: 'runfleet.yaml' } }).temporal.address).toBe('chosen.example:7233');
    const xdg = tmp();
    mkdirSync(join(xdg, 'runfleet'));
    writeFileSync(join(xdg, 'runfleet', 'config.yaml'), 'temporal:\n  address: mine.example:7233\n');
    const c = loadConfig({ cwd, env: { XDG_CONFIG_HOME: xdg } });
    console.log(`config trust: user config ${c.configFile} -> ${c.temporal.address}`);
    expect(c.temporal.address).toBe('mine.example:7233');
    const home = tmp();
    mkdirSync(join(home, '.config', 'runfleet'), { recursive: true });
    writeFileSync(join(home, '.config', 'runfleet', 'config.yaml'), 'temporal:\n  namespace: ci\n');
    expect(loadConfig({ cwd, env: { HOME: home } }).temporal.namespace).toBe('ci');
    expect(thrown(() => loadConfig({ cwd, env: { RUNFLEET_CONFIG: 'nope.yaml' } })).message).toBe(
      `config file ${join(cwd, 'nope.yaml')} (RUNFLEET_CONFIG) does not exist`,
    );
  });
});

describe('connection settings from the environment', () => {
  it('takes the connect timeout from RUNFLEET_CONNECT_TIMEOUT_MS', () => {
    const cwd = tmp();
    expect(loadConfig({ cwd, env: { RUNFLEET_CONNECT_TIMEOUT_MS: '9000' } }).temporal.connectTimeoutMs).toBe(9000);
    const err = thrown(() => loadConfig({ cwd, env: { RUNFLEET_CONNECT_TIMEOUT_MS: 'soon' } }));
    console.log(`config: RUNFLEET_CONNECT_TIMEOUT_MS=soon -> ${err.message}`);
    expect(err.code).toBe('InvalidConfig');
    expect(err.message).toMatch(/^invalid configuration: RUNFLEET_CONNECT_TIMEOUT_MS: /);
  });
});

describe('prototype keys', () => {
  it('are refused in a config file, naming the path, and pollute nothing', () => {
    const cwd = tmp();
    const file = join(cwd, 'proto.yaml');
    writeFileSync(file, 'temporal:\n  __proto__:\n    polluted: yes\n');
    const err = thrown(() => loadConfig({ cwd, env: {}, configFile: file }));
    console.log(`config: __proto__ under temporal -> ${err.code}: ${err.message}`);
    expect(err.code).toBe('InvalidConfig');
    expect(err.message).toBe(
      `${file}: temporal.__proto__: this key is not allowed (it would change an object's prototype)`,
    );
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    writeFileSync(file, 'constructor:\n  prototype: 1\n');
    expect(thrown(() => loadConfig({ cwd, env: {}, configFile: file })).message).toContain(`${file}: constructor:`);
  });

  it('are refused in run files, YAML and JSON', async () => {
    const cwd = tmp();
    const json = join(cwd, 'run.json');
    writeFileSync(json, '{"name": "x", "tasks": [{"name": "a", "steps": ["true"], "env": {"__proto__": {"x": "1"}}}]}');
    const err = (await loadRunSpecFile(json).catch((e: unknown) => e)) as RunfleetError;
    console.log(`run file: __proto__ in a task's env (JSON) -> ${err.code}: ${err.message.replace(/\n\s*/g, ' | ')}`);
    expect(err.code).toBe('InvalidRunSpec');
    expect(err.message).toContain(
      "tasks[0].env.__proto__: this key is not allowed (it would change an object's prototype)",
    );
    const yaml = join(cwd, 'run.yaml');
    writeFileSync(yaml, 'name: x\ntasks:\n  - name: a\n    steps: ["true"]\n    prototype: 1\n');
    expect(((await loadRunSpecFile(yaml).catch((e: unknown) => e)) as Error).message).toContain('tasks[0].prototype:');
    // A file without an extension is tried as JSON, then YAML: refused either way.
    expect(() => parseRunFileText('{"__proto__": {}}', join(cwd, 'run'))).toThrow('__proto__: this key is not allowed');
  });

  it('are found at any depth, and only as keys', () => {
    expect(forbiddenKeyPath({ a: [{ b: { constructor: 1 } }] })).toBe('a[0].b.constructor');
    expect(forbiddenKeyPath({ a: ['__proto__'], b: 'prototype' })).toBeNull();
    expect(parseJsonText('{"ok": {"__proto__": 1}}').problems).toEqual([
      { path: 'ok.__proto__', message: "this key is not allowed (it would change an object's prototype)" },
    ]);
  });
});

describe('YAML alias bombs', () => {
  it('are a user error in run, fleet and config files', async () => {
    expect(parseYamlText(ALIAS_BOMB).problems).toEqual([
      { path: '(file)', message: 'YAML: its aliases expand too far (more than 100): refused' },
    ]);
    const cwd = tmp();
    const run = join(cwd, 'bomb.yaml');
    writeFileSync(run, ALIAS_BOMB);
    const runErr = (await loadRunSpecFile(run).catch((e: unknown) => e)) as RunfleetError;
    console.log(
      `run file: YAML alias bomb -> ${runErr.code} (${runErr.source}): ${runErr.message.replace(/\n\s*/g, ' | ')}`,
    );
    expect(runErr.code).toBe('InvalidRunSpec');
    const fleetErr = (await loadFleetSpecFile(run).catch((e: unknown) => e)) as RunfleetError;
    expect(fleetErr.code).toBe('InvalidConfig');
    const configErr = thrown(() => loadConfig({ cwd, env: {}, configFile: run }));
    console.log(`config file: YAML alias bomb -> ${configErr.code}: ${configErr.message}`);
    expect(configErr.message).toBe(`${run}: its YAML aliases expand too far (more than 100): refused`);
    // Ordinary anchors still work.
    expect(parseYamlText('base: &b {x: 1}\nother: *b\n').value).toEqual({ base: { x: 1 }, other: { x: 1 } });
  });
});
