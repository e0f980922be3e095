/**
 * A runner's records hold through a kill -9 at any instant of a task's execution: a real
 * `runner serve` armed with `RUNFLEET_CRASH_AT=<point>` (src/runner/crash-points.ts) kills itself
 * there, is started again unarmed, and the run ends with the task's true outcome, the task
 * having run at most once. Against the real dev server, real process driver, tasks as task users.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CRASH_POINTS, type CrashPoint } from '../../src/runner/crash-points';
import type { RunState } from '../../src/types';
import { startHarness, type Harness } from '../helpers/harness';
import { killAll, registerRunner, serveRunner } from '../helpers/processes';
import { fileLines, sharedFile } from '../helpers/shared-files';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ runners: [] });
});
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  await h?.stop();
});

/** What the task did, by point: nothing before it started; from then on it ran, once. */
const RAN: Record<CrashPoint, number> = { recorded: 0, started: 1, ended: 1, closed: 1 };

describe('a runner killed -9 at each crash point of a task, then started again', () => {
  it.each(CRASH_POINTS)('at "%s": the task ran at most once and its true outcome settles it', async (point) => {
    const name = uniqueName(`crash-${point}`);
    const pool = uniqueName('crash-pool');
    const counter = sharedFile(h.dataDir, `${name}.count`);
    const token = await registerRunner(h.client, h.controlQueue, { name, pool });
    const armed = serveRunner({
      address: h.address,
      root: h.dataDir,
      name,
      pool,
      token,
      env: { RUNFLEET_CRASH_AT: point },
    });
    const handle = await h.start(
      {
        name: `crash-${point}`,
        group: '/test/crash-points',
        tasks: [{ name: 'deploy', pool, steps: [`echo ran >> ${counter}`, 'sleep 2', 'exit 3'] }],
      },
      { heartbeatTimeout: '4s' },
    );
    expect(await armed.exited, `the runner killed itself at "${point}"; its output:\n${armed.output()}`).toBe(137);

    const again = serveRunner({ address: h.address, root: h.dataDir, name, pool });
    // Both processes log to the same file: the second "serving pool" is this one's.
    await until('the runner serving again', () => again.output().split(' serving pool ').length > 2, {
      timeoutMs: 60_000,
      everyMs: 200,
      detail: () => again.output(),
    });
    const s: RunState = await handle.result();
    const t = s.tasks.deploy!;
    expect(fileLines(counter), `runs of the task (crash at "${point}")`).toHaveLength(RAN[point]);
    expect(t.status).toBe('failed');
    expect(t.attempts).toBe(1);
    if (RAN[point] === 1) {
      // Its own exit code, from the supervisor's exit file or the done marker, signed by the runner.
      expect(t.exitCode).toBe(3);
    } else {
      // Never started: the restarted runner finds the record and no supervisor, and says so.
      expect(t.exitCode).toBe(255);
      expect(t.reason).toMatch(/its supervisor was never recorded and none runs/);
    }
    expect(s.result).toBe('failed');
  });
});
