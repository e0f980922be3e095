import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = resolve(__dirname, '../../bin/runfleet');
const cwd = mkdtempSync(join(tmpdir(), 'runfleet-cli-unreachable-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

/** Port 1 (tcpmux) is closed everywhere we run: connections are refused at once. */
const NOWHERE = '127.0.0.1:1';

function runfleet(args: string[], extraEnv: Record<string, string>) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|RUNFLEET_)/.test(k)));
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...base, ...extraEnv },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('an unreachable Temporal server', () => {
  // The client waits up to 5 s for the server before it reports it unreachable.
  it('run list exits 3 with one line naming the address and the variable', { timeout: 60_000 }, () => {
    const r = runfleet(['run', 'list'], { TEMPORAL_ADDRESS: NOWHERE });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^runfleet: cannot reach Temporal at 127\.0\.0\.1:1 \(TEMPORAL_ADDRESS\): /);
  });

  it('run show --json exits 3 and prints nothing on stdout', { timeout: 60_000 }, () => {
    const r = runfleet(['run', 'show', 'run/default/abc', '--json'], { TEMPORAL_ADDRESS: NOWHERE });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`cannot reach Temporal at ${NOWHERE}`);
  });

  it('run submit validates the file before it connects', () => {
    const bad = join(cwd, 'bad.json');
    writeFileSync(bad, JSON.stringify({ name: 'r', tasks: [] }));
    const r = runfleet(['run', 'submit', bad], { TEMPORAL_ADDRESS: NOWHERE });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('tasks: a run needs at least one task');
  });

  it('run submit of a valid file exits 3', { timeout: 60_000 }, () => {
    const ok = join(cwd, 'ok.json');
    writeFileSync(ok, JSON.stringify({ name: 'r', tasks: [{ name: 't', steps: ['true'] }] }));
    const r = runfleet(['run', 'submit', ok], { TEMPORAL_ADDRESS: NOWHERE });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`cannot reach Temporal at ${NOWHERE}`);
  });
});
