import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = resolve(__dirname, '../../bin/runfleet');
const cwd = mkdtempSync(join(tmpdir(), 'runfleet-cli-flags-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function runfleet(args: string[], extraEnv: Record<string, string> = {}) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|RUNFLEET_)/.test(k)));
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...base, ...extraEnv },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A usage error: exit 2, nothing on stdout, exactly one line on stderr. */
function usageError(args: string[], env?: Record<string, string>): string {
  const r = runfleet(args, env);
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^runfleet: /);
  return lines[0] as string;
}

describe('runfleet usage errors', () => {
  it('help exits 0 and lists the commands', () => {
    const r = runfleet(['--help']);
    expect(r.code).toBe(0);
    for (const command of ['up', 'server', 'worker', 'runner', 'run', 'schema', 'validate'])
      expect(r.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('rejects an unknown command', () => {
    expect(usageError(['deploy'])).toBe("runfleet: unknown command 'deploy'");
  });

  it('rejects an unknown flag and suggests the close one', () => {
    expect(usageError(['run', 'list', '--jsn'])).toBe("runfleet: unknown option '--jsn' (Did you mean --json?)");
  });

  it('rejects a non-integer port before starting anything', () => {
    const line = usageError(['up', '--port', 'abc']);
    expect(line).toContain("'--port <port>'");
    expect(line).toContain("'abc'");
    expect(line).toContain('whole number from 1 to 65535');
  });

  it('rejects an out-of-range port', () => {
    expect(usageError(['server', 'start-dev', '--ui-port', '70000'])).toContain(
      "'--ui-port <port>' argument '70000' is invalid",
    );
  });

  it('rejects a bad slot count', () => {
    expect(usageError(['runner', 'serve', '--slots', '1.5'])).toContain("'--slots <n>' argument '1.5' is invalid");
  });

  it('validates --phase and --result against the known values', () => {
    expect(usageError(['run', 'list', '--phase', 'done'])).toContain(
      'Allowed choices are queued, running, finished, cancelled',
    );
    expect(usageError(['run', 'list', '--result', 'ok'])).toContain(
      'Allowed choices are unknown, success, failed, stopped',
    );
  });

  it('rejects a bad --limit', () => {
    expect(usageError(['run', 'list', '--limit', '0'])).toContain("'--limit <n>' argument '0' is invalid");
  });

  it('rejects a missing argument', () => {
    expect(usageError(['run', 'show'])).toBe("runfleet: missing required argument 'id'");
  });

  it('rejects extra arguments', () => {
    expect(usageError(['run', 'cancel', 'a', 'b'])).toContain('too many arguments');
  });

  it('rejects --exit-when-done without --submit before starting anything', () => {
    expect(usageError(['up', '--exit-when-done'])).toBe('runfleet: --exit-when-done needs --submit FILE');
  });

  it('names a bad environment variable', () => {
    expect(usageError(['run', 'list'], { TEMPORAL_ADDRESS: 'localhost' })).toBe(
      'runfleet: invalid configuration: TEMPORAL_ADDRESS: must be host:port, like localhost:7233',
    );
  });

  it('names a bad flag value that overrides the environment', () => {
    expect(usageError(['--address', 'nope', 'run', 'list'], { TEMPORAL_ADDRESS: 'localhost:7233' })).toBe(
      'runfleet: invalid configuration: --address: must be host:port, like localhost:7233',
    );
  });

  it('names an unknown field of the config file', () => {
    const file = join(cwd, 'bad-config.yaml');
    writeFileSync(file, 'temporal:\n  adress: localhost:7233\n');
    expect(usageError(['--config', file, 'run', 'list'])).toBe(
      `runfleet: invalid configuration: ${file}: unknown field temporal.adress`,
    );
  });

  it('names a missing config file', () => {
    expect(usageError(['--config', 'missing.yaml', 'run', 'list'])).toBe(
      `runfleet: config file ${join(cwd, 'missing.yaml')} (--config) does not exist`,
    );
  });
});
