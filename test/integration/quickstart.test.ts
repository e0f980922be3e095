/**
 * The README's quick start, tried as a new user would: a clean clone of this repository (the
 * committed HEAD), then `scripts/quickstart`. It installs the dependencies, finds or builds the
 * Temporal CLI, starts the dev server on a SQLite file, the control worker and a local runner,
 * and runs the example to the end (`--exit-when-done` makes it exit instead of serving on).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/server/ports';
import { projectRoot } from '../helpers/processes';

const clones: string[] = [];
afterAll(() => {
  for (const dir of clones) execFileSync('rm', ['-rf', dir]);
});

describe('README quick start', () => {
  it('runs the example on the embedded default from a clean clone', async () => {
    const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
    expect(readme).toContain('scripts/quickstart');
    expect(readme).toContain('scripts/verify');

    const dir = mkdtempSync(join(tmpdir(), 'runfleet-clone-'));
    clones.push(dir);
    execFileSync('git', ['clone', '--quiet', projectRoot, join(dir, 'runfleet')]);
    const clone = join(dir, 'runfleet');
    expect(existsSync(join(clone, 'node_modules'))).toBe(false);

    const [port, uiPort] = [await freePort(), await freePort()];
    const result = await new Promise<{ code: number; output: string }>((resolve) => {
      const child = spawn(
        'bash',
        ['scripts/quickstart', '--exit-when-done', '--port', String(port), '--ui-port', String(uiPort)],
        {
          cwd: clone,
          // A new user's environment: no key file named, so `up` makes the data keys in its home.
          env: { ...withoutKeyFile(process.env), RUNFLEET_HOME: join(dir, 'home') },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      child.on('exit', (code) => resolve({ code: code ?? -1, output }));
    });
    expect(result.output).toContain(`http://`);
    expect(result.output).toContain(`:${uiPort}`);
    expect(result.output).toMatch(/run\/examples\/diamond\//);
    expect(result.output.toLowerCase()).toContain('success');
    expect(result.code, result.output.slice(-3000)).toBe(0);
    expect(existsSync(join(dir, 'home', 'data', 'temporal.db'))).toBe(true);
  }, 900_000);
});

function withoutKeyFile(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { RUNFLEET_KEY_FILE: _unused, ...rest } = env;
  return rest;
}
