/**
 * The package as an operator installs it: `npm pack` (which builds), `npm install -g` into a
 * prefix of its own (dependencies from the npm registry, as on a clean machine), then the
 * installed `runfleet` from a directory that is not the checkout: it runs the compiled build (no
 * sources, no tsx), and `runfleet up --submit FILE --exit-when-done` runs a run end to end with
 * its own dev server, its compiled control worker (the build's workflow bundle) and its runner.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePorts } from '../../src/server/ports';
import { ensureTemporalBinary } from '../../src/server/temporal-binary';
import { projectRoot } from '../helpers/processes';

function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), out });
    });
  });
}

describe('the npm package', () => {
  it('installs with npm install -g and runs a run with runfleet up from anywhere, from its build', async () => {
    const work = mkdtempSync(join(tmpdir(), 'runfleet-package-'));
    execFileSync('npm', ['pack', '--pack-destination', work], { cwd: projectRoot, stdio: 'pipe' });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball, `npm pack left no tarball in ${work}`).toBeDefined();
    const listing = execFileSync('tar', ['-tzf', join(work, tarball!)], { encoding: 'utf8' }).split('\n');
    expect(listing).toContain('package/dist/src/cli/main.js');
    expect(listing).toContain('package/dist/workflow-bundle.js');
    expect(listing.filter((f) => /^package\/(src|test)\//.test(f) || f.endsWith('.ts'))).toEqual([]);

    const prefix = join(work, 'global');
    const install = await run(
      'npm',
      ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', join(work, tarball!)],
      { cwd: work, timeoutMs: 300_000 },
    );
    expect(install.code, install.out).toBe(0);
    const bin = join(prefix, 'bin', 'runfleet');
    expect(existsSync(bin)).toBe(true);
    expect(existsSync(join(prefix, 'lib', 'node_modules', 'runfleet', 'node_modules', 'tsx'))).toBe(false);

    // Elsewhere: a directory with a run file and nothing else.
    const elsewhere = join(work, 'elsewhere');
    mkdirSync(elsewhere);
    cpSync(join(projectRoot, 'examples', 'diamond.yaml'), join(elsewhere, 'diamond.yaml'));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: elsewhere,
      // The dev server binary the checkout built: an installed package builds its own otherwise.
      RUNFLEET_TEMPORAL_BIN: await ensureTemporalBinary({ projectRoot }),
      RUNFLEET_ALLOW_PLAINTEXT: '1',
    };
    const help = await run(bin, ['--help'], { cwd: elsewhere, env, timeoutMs: 30_000 });
    expect(help.code, help.out).toBe(0);
    expect(help.out).toMatch(/Usage: runfleet/);

    const [port, uiPort] = (await freePorts(2)) as [number, number];
    const up = await run(
      bin,
      ['up', '--port', String(port), '--ui-port', String(uiPort), '--submit', 'diamond.yaml', '--exit-when-done'],
      { cwd: elsewhere, env, timeoutMs: 240_000 },
    );
    expect(up.code, up.out.slice(-3_000)).toBe(0);
    expect(up.out).toMatch(/success/);
    // It ran from the build: the state went to the working directory's .runfleet, not the package.
    expect(existsSync(join(elsewhere, '.runfleet'))).toBe(true);
  }, 600_000);
});
