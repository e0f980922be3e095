import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSpawner } from '../../src/runner/spawner';
import { until } from '../helpers/until';

const dir = mkdtempSync(join(tmpdir(), 'rf-spawner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spawner = createSpawner();
const sh = (script: string, logFile = join(dir, 'log')) =>
  spawner.spawn({ command: '/bin/sh', args: ['-c', script], cwd: dir, env: { RF_X: 'from the runner' }, logFile });

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

describe('spawner: supervisors started from a small helper process', () => {
  it('starts a detached process with the env, cwd and log given, and reports its exit code', async () => {
    const log = join(dir, 'one.log');
    const { pid, exit } = await sh('echo "$RF_X in $PWD"; echo err >&2; exit 7', log);
    expect(pid).toBeGreaterThan(0);
    expect(await exit).toEqual({ code: 7, signal: null });
    expect(readFileSync(log, 'utf8')).toBe(`from the runner in ${dir}\nerr\n`);
    expect(statSync(log).mode & 0o777).toBe(0o600);
  });

  it('starts it in a process group of its own (a kill of the group reaches it, not us)', async () => {
    const { pid, exit } = await sh('sleep 30');
    const pgid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]);
    expect(pgid).toBe(pid);
    process.kill(-pid, 'SIGTERM');
    expect(await exit).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('rejects with the errno when the command cannot start, or the log cannot be opened', async () => {
    await expect(
      spawner.spawn({ command: join(dir, 'no-such'), args: [], cwd: dir, env: {}, logFile: join(dir, 'l') }),
    ).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(sh('true', join(dir, 'no-such-dir', 'log'))).rejects.toMatchObject({ code: 'ENOENT' });
    // and goes on starting others
    expect(await (await sh('exit 0')).exit).toEqual({ code: 0, signal: null });
  });

  it('many at once: each exit goes to its own process', async () => {
    const started = await Promise.all(Array.from({ length: 20 }, (_, i) => sh(`exit ${i}`)));
    const exits = await Promise.all(started.map((s) => s.exit));
    expect(exits.map((e) => e.code)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('the helper killed: what it started runs on and is watched until it ends; the next start makes a new helper', async () => {
    const { pid, exit } = await sh('sleep 1');
    const helper = spawner.helperPid()!;
    process.kill(helper, 'SIGKILL');
    await until('the helper gone', () => !alive(helper), { timeoutMs: 5_000 });
    expect(alive(pid)).toBe(true);
    // Its exit status went with the helper: only that it ended is known.
    expect(await exit).toEqual({ code: null, signal: null });
    expect(alive(pid)).toBe(false);
    const next = await sh('exit 3');
    expect(spawner.helperPid()).not.toBe(helper);
    expect(await next.exit).toEqual({ code: 3, signal: null });
  });
});
