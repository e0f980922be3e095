/**
 * `runfleet runner configure|start|logs|restart|stop` as an operator runs them: a real
 * `runner serve` in the background against the suite's dev server, registered with a token.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRunnerProcess, readPid } from '../../src/runner/daemon';
import { startHarness, testRunnerAdmin, type Harness } from '../helpers/harness';
import { projectRoot, runfleetBin, runCli, type CliResult } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

let h: Harness;
let home: string;
const stateDirs: string[] = [];

beforeAll(async () => {
  h = await startHarness();
  home = mkdtempSync(join(tmpdir(), 'runfleet-daemon-'));
});

afterAll(async () => {
  // Whatever a failed test left running.
  for (const dir of stateDirs) {
    const pid = readPid(dir);
    if (pid !== null && isRunnerProcess(pid)) process.kill(pid, 'SIGKILL');
  }
  await h?.stop();
});

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, h, { RUNFLEET_HOME: home });
}

function stateDir(name: string): string {
  const dir = join(home, 'state', name);
  stateDirs.push(dir);
  return dir;
}

describe('runner daemon commands', () => {
  it('configures, starts, runs a task, shows logs, restarts and stops a background runner', async () => {
    const name = uniqueName('daemon');
    const dir = stateDir(name);
    const { token } = await testRunnerAdmin(h.client, h.controlQueue).create({
      name,
      pool: h.pool,
    });

    const configured = await cli([
      'runner',
      'configure',
      '--state-dir',
      dir,
      '--set',
      `runner.name=${name}`,
      '--set',
      `runner.pool=${h.pool}`,
      '--set',
      `runner.token=${token}`,
      '--set',
      'runner.slots=2',
    ]);
    expect(configured.stderr).toBe('');
    expect(configured.code).toBe(0);
    expect(statSync(join(dir, 'runner.yaml')).mode & 0o777).toBe(0o600);

    const shown = await cli(['runner', 'configure', '--state-dir', dir, '--show', '--json']);
    expect(shown.code).toBe(0);
    const settings = (JSON.parse(shown.stdout) as { settings: Record<string, unknown> }).settings;
    expect(settings['runner.pool']).toBe(h.pool);
    expect(settings['runner.slots']).toBe(2);
    expect(settings['runner.token']).toMatch(/\*\*\*\*$/);
    expect(shown.stdout).not.toContain(token);

    const t0 = Date.now();
    const started = await cli(['runner', 'start', '--state-dir', dir, '--json']);
    const startMs = Date.now() - t0;
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    const first = JSON.parse(started.stdout) as { pid: number; logFile: string; name: string };
    expect(first.name).toBe(name);
    expect(first.logFile).toBe(join(dir, 'runner.log'));
    expect(readPid(dir)).toBe(first.pid);
    expect(isRunnerProcess(first.pid)).toBe(true);
    console.log(`runner start took ${startMs} ms`);

    const again = await cli(['runner', 'start', '--state-dir', dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`runner ${name} already running (pid ${first.pid})`);

    // A run executes on it.
    const handle = await h.start({
      name: 'daemon run',
      group: '/daemon',
      tasks: [{ name: 'hello', pool: h.pool, steps: ['echo hello from the daemon'] }],
    });
    const final = await h.waitFor(handle, (s) => s.phase === 'finished');
    expect(final.tasks.hello?.runner).toBe(name);
    // Soft: the steps below (logs, restart, stop) still run when the task itself failed.
    expect
      .soft(final.result, `${JSON.stringify(final.tasks)}\n${readFileSync(join(dir, 'runner.log'), 'utf8')}`)
      .toBe('success');

    const logs = await cli(['runner', 'logs', '--state-dir', dir, '--lines', '200']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toMatch(new RegExp(`runner ${name} (serving|registered)`));
    const few = await cli(['runner', 'logs', '--state-dir', dir, '-n', '2']);
    expect(few.stdout.trimEnd().split('\n')).toHaveLength(2);

    // --follow prints what is appended until it is stopped.
    const follow = spawn(process.execPath, [runfleetBin, 'runner', 'logs', '--state-dir', dir, '--follow', '-n', '1'], {
      cwd: projectRoot,
      env: { ...process.env, RUNFLEET_HOME: home },
    });
    let followed = '';
    follow.stdout.on('data', (d) => (followed += d));
    await until('the first line', () => followed.split('\n').length >= 2, { timeoutMs: 20_000, everyMs: 100 });
    appendFileSync(join(dir, 'runner.log'), 'a line appended by the test\n');
    await until('the appended line', () => followed.includes('a line appended by the test\n'), {
      timeoutMs: 20_000,
      everyMs: 100,
    });
    follow.kill('SIGINT');
    expect(await new Promise((r) => follow.once('exit', r))).toBe(0);

    const restarted = await cli(['runner', 'restart', '--state-dir', dir, '--json']);
    expect(restarted.code).toBe(0);
    expect(restarted.stderr).toContain(`runner ${name} stopped (pid ${first.pid})`);
    const second = JSON.parse(restarted.stdout) as { pid: number };
    expect(second.pid).not.toBe(first.pid);
    await until('the first runner process gone', () => !isRunnerProcess(first.pid), {
      timeoutMs: 10_000,
      everyMs: 100,
    });
    expect(readPid(dir)).toBe(second.pid);

    const t1 = Date.now();
    const stopped = await cli(['runner', 'stop', '--state-dir', dir]);
    console.log(`runner stop took ${Date.now() - t1} ms`);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout.trim()).toBe(`runner ${name} stopped (pid ${second.pid})`);
    expect(isRunnerProcess(second.pid)).toBe(false);
    expect(existsSync(join(dir, 'runner.pid'))).toBe(false);

    const stoppedAgain = await cli(['runner', 'stop', '--state-dir', dir]);
    expect(stoppedAgain.code).toBe(0);
    expect(stoppedAgain.stdout.trim()).toBe(`runner ${name} not running`);
  });

  it('replaces a stale pid file', async () => {
    const name = uniqueName('stale');
    const dir = stateDir(name);
    const { token } = await testRunnerAdmin(h.client, h.controlQueue).create({
      name,
      pool: h.pool,
    });
    const set = await cli(['runner', 'configure', '--state-dir', dir, '--set', `runner.token=${token}`]);
    expect(set.code).toBe(0);
    // A pid that ran once and is gone now.
    const dead = spawn(process.execPath, ['-e', '0']);
    const deadPid = dead.pid as number;
    await new Promise((r) => dead.once('exit', r));
    writeFileSync(join(dir, 'runner.pid'), `${deadPid}\n`);

    const t0 = Date.now();
    const started = await cli(['runner', 'start', '--state-dir', dir, '--name', name, '--pool', h.pool]);
    console.log(`start over a stale pid file took ${Date.now() - t0} ms`);
    expect(started.code).toBe(0);
    expect(started.stdout).toContain(
      `removing stale pid file ${join(dir, 'runner.pid')} (pid ${deadPid} is not running)`,
    );
    const pid = readPid(dir) as number;
    expect(pid).not.toBe(deadPid);
    expect(isRunnerProcess(pid)).toBe(true);
    const t1 = Date.now();
    const stopped = await cli(['runner', 'stop', '--state-dir', dir]);
    console.log(`stop took ${Date.now() - t1} ms`);
    expect(stopped.code).toBe(0);
    await until('the runner process gone', () => !isRunnerProcess(pid), { timeoutMs: 10_000, everyMs: 100 });
  });

  it('reports a serve that fails at once with the end of its log', async () => {
    const name = uniqueName('bad');
    const dir = stateDir(name);
    const started = await cli(['runner', 'start', '--state-dir', dir, '--name', name, '--no-such-flag']);
    expect(started.code).toBe(1);
    expect(started.stderr).toMatch(
      new RegExp(`runner ${name} exited with code 2 before it served; the end of .*runner.log:`),
    );
    expect(started.stderr).toContain("unknown option '--no-such-flag'");
    expect(existsSync(join(dir, 'runner.pid'))).toBe(false);
    expect(readFileSync(join(dir, 'runner.log'), 'utf8')).toContain('--no-such-flag');
  });

  it('refuses configure without --set off a terminal, and bad keys and values', async () => {
    const dir = stateDir(uniqueName('conf'));
    const noTty = await cli(['runner', 'configure', '--state-dir', dir]);
    expect(noTty.code).toBe(2);
    expect(noTty.stderr).toContain('not a terminal');
    const badKey = await cli(['runner', 'configure', '--state-dir', dir, '--set', 'runner.colour=red']);
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('unknown key "runner.colour"; valid keys: temporal.address, temporal.namespace');
    const badValue = await cli(['runner', 'configure', '--state-dir', dir, '--set', 'runner.slots=0']);
    expect(badValue.code).toBe(2);
    expect(badValue.stderr).toContain('runner.slots: must be at least 1');
    expect(existsSync(join(dir, 'runner.yaml'))).toBe(false);
  });
});
