/** `runfleet fleet plan|apply` with a bad file: every problem named, exit 2, no server needed. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = resolve(__dirname, '../../bin/runfleet');
const EXAMPLE = resolve(__dirname, '../../examples/fleet.yaml');
const cwd = mkdtempSync(join(tmpdir(), 'runfleet-fleet-cli-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function runfleet(...args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|RUNFLEET_)/.test(k)));
  // Port 1: nothing listens there; a command that got past validation would report it unreachable.
  const r = spawnSync(process.execPath, [BIN, '--address', '127.0.0.1:1', ...args], {
    cwd,
    env,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('runfleet fleet with an invalid file', () => {
  const file = join(cwd, 'bad.yaml');
  writeFileSync(
    file,
    [
      'name: ci',
      'launchTemplate: { ami: ami-1, userData: "echo", securityGroups: [sg-1] }',
      'resourceClasses:',
      '  - { name: small, instanceType: t3.large, minIdle: 4, maxInstances: 2 }',
      '  - { name: gpu, instanceType: p4, maxInstances: 2 }',
      'subnets: [subnet-1]',
      'maxIdleTime: 1 hour',
      'token: { lifetime: 10m, rotation: 20m }',
    ].join('\n'),
  );

  for (const command of ['plan', 'apply']) {
    it(`${command}: names every invalid field, exits 2, and never contacts the server`, () => {
      const r = runfleet('fleet', command, file);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines[0]).toBe(`runfleet: invalid fleet file ${file}:`);
      expect(
        lines
          .slice(1)
          .map((l) => l.trim().split(':')[0])
          .sort(),
      ).toEqual([
        'launchTemplate.userData',
        'launchTemplate.userData',
        'maxIdleTime',
        'resourceClasses.gpu.instanceType',
        'resourceClasses.small.minIdle',
        'token.rotation',
      ]);
      expect(r.stderr).not.toMatch(/unreachable|cannot reach/);
    });
  }

  // The client waits up to 5 s for the server before it reports it unreachable.
  it('the example file is valid (it gets as far as the server)', { timeout: 60_000 }, () => {
    const r = runfleet('fleet', 'plan', EXAMPLE);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot reach Temporal at 127\.0\.0\.1:1/);
  });
});
