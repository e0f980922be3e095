/** DAG semantics of a run, end to end on the real dev server with real runner processes' drivers. */
import { WorkflowFailedError } from '@temporalio/client';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunState } from '../../src/types';
import { startHarness, task, type Harness } from '../helpers/harness';
import { signedApproval } from '../helpers/operator-key';
import { until } from '../helpers/until';
import { stopRunSignal } from '../../workflows/run-messages';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    runners: [
      { name: 'dag-r1', slots: 8 },
      { name: 'dag-r2', slots: 8 },
    ],
  });
});
afterAll(async () => {
  await h?.stop();
});

const ms = (iso: string | null) => (iso ? Date.parse(iso) : NaN);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('run DAGs', () => {
  it('runs a diamond in dependency order', async () => {
    const handle = await h.start({
      name: 'diamond',
      group: '/test/dag',
      tasks: [
        task(h, 'a', ['echo a']),
        task(h, 'b', ['sleep 0.3'], { depends: ['a'] }),
        task(h, 'c', ['sleep 0.3'], { depends: ['a'] }),
        task(h, 'd', ['echo d'], { depends: ['b', 'c'] }),
      ],
    });
    const s: RunState = await handle.result();
    expect(s.phase).toBe('finished');
    expect(s.result).toBe('success');
    const t = s.tasks;
    for (const name of ['a', 'b', 'c', 'd']) {
      expect(t[name]?.status).toBe('success');
      expect(t[name]?.exitCode).toBe(0);
      expect(t[name]?.runner).toMatch(/^dag-r[12]$/);
    }
    expect(ms(t.b!.startedAt)).toBeGreaterThanOrEqual(ms(t.a!.finishedAt));
    expect(ms(t.c!.startedAt)).toBeGreaterThanOrEqual(ms(t.a!.finishedAt));
    expect(ms(t.d!.startedAt)).toBeGreaterThanOrEqual(Math.max(ms(t.b!.finishedAt), ms(t.c!.finishedAt)));
    // b and c ran side by side (fan-out), not one after the other.
    expect(ms(t.c!.startedAt)).toBeLessThan(ms(t.b!.finishedAt));
  });

  it('fans out to 50 tasks and joins them', async () => {
    const middle = Array.from({ length: 50 }, (_, i) => task(h, `m${i}`, ['true'], { depends: ['root'] }));
    const handle = await h.start({
      name: 'fan-50',
      group: '/test/dag',
      tasks: [task(h, 'root', ['true']), ...middle, task(h, 'join', ['true'], { depends: middle.map((m) => m.name) })],
    });
    const s: RunState = await handle.result();
    expect(s.result).toBe('success');
    const lastMiddle = Math.max(...middle.map((m) => ms(s.tasks[m.name]!.finishedAt)));
    expect(ms(s.tasks.join!.startedAt)).toBeGreaterThanOrEqual(lastMiddle);
    expect(Object.values(s.tasks).every((t) => t.status === 'success')).toBe(true);
    expect(new Set(Object.values(s.tasks).map((t) => t.runner)).size).toBe(2);
  });

  it('applies on_success / on_failure / on_skipped and propagates skips', async () => {
    const handle = await h.start({
      name: 'conditions',
      group: '/test/dag',
      tasks: [
        task(h, 'build', ['exit 3']),
        task(h, 'deploy', ['echo deploy'], { depends: ['build'] }),
        task(h, 'after-deploy', ['echo x'], { depends: ['deploy'] }),
        task(h, 'notify-failure', ['echo failed'], { depends: [{ task: 'build', conditions: ['on_failure'] }] }),
        task(h, 'when-skipped', ['echo skipped'], { depends: [{ task: 'deploy', conditions: ['on_skipped'] }] }),
        task(h, 'always', ['true'], { depends: [{ task: 'build', conditions: ['on_success', 'on_failure'] }] }),
      ],
    });
    const s: RunState = await handle.result();
    const status = Object.fromEntries(Object.entries(s.tasks).map(([k, v]) => [k, v.status]));
    expect(status).toEqual({
      build: 'failed',
      deploy: 'skipped',
      'after-deploy': 'skipped',
      'notify-failure': 'success',
      'when-skipped': 'success',
      always: 'success',
    });
    expect(s.tasks.build!.exitCode).toBe(3);
    expect(s.tasks.build!.reason).toContain('exited with code 3');
    expect(s.tasks.deploy!.reason).toContain('"build" ended failed');
    expect(s.result).toBe('failed');
  });

  it('lets ignore_failure tasks fail without failing the run', async () => {
    const handle = await h.start({
      name: 'ignore',
      group: '/test/dag',
      tasks: [task(h, 'lint', ['exit 1'], { ignore_failure: true }), task(h, 'test', ['true'], { depends: ['lint'] })],
    });
    const s: RunState = await handle.result();
    expect(s.tasks.lint!.status).toBe('failed');
    expect(s.tasks.test!.status).toBe('success');
    expect(s.result).toBe('success');
  });

  it('enforces a task timeout and kills the process group', async () => {
    const pidFile = join(h.dataDir, 'timeout.pids');
    const handle = await h.start({
      name: 'timeout',
      group: '/test/dag',
      tasks: [task(h, 'slow', [`sleep 120 & echo "$$ $!" > ${pidFile}; wait`], { timeout: '2s' })],
    });
    const s: RunState = await handle.result();
    expect(s.tasks.slow!.status).toBe('failed');
    expect(s.tasks.slow!.reason).toContain('timed out after 2s');
    expect(s.result).toBe('failed');
    const pids = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    expect(pids).toHaveLength(2);
    await until('the task processes gone', () => pids.every((p) => !alive(p)), {
      timeoutMs: 10_000,
      everyMs: 100,
      detail: () => `still alive: ${pids.filter(alive).join(' ')}`,
    });
  });

  it('cancels a run mid-flight: the process dies and pending tasks are cancelled', async () => {
    const pidFile = join(h.dataDir, 'cancel.pids');
    const handle = await h.start({
      name: 'cancel',
      group: '/test/dag',
      tasks: [
        task(h, 'long', [`sleep 120 & echo "$$ $!" > ${pidFile}; wait`]),
        task(h, 'next', ['true'], { depends: ['long'] }),
      ],
    });
    await h.waitFor(handle, (s) => s.tasks.long?.status === 'running' && existsSync(pidFile));
    const pids = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    await handle.cancel();
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    const s = await h.state(handle);
    expect(s.result).toBe('stopped');
    expect(s.phase).toBe('finished');
    expect(s.tasks.long!.status).toBe('cancelled');
    expect(s.tasks.next!.status).toBe('cancelled');
    await until('the task processes gone', () => pids.every((p) => !alive(p)), {
      timeoutMs: 10_000,
      everyMs: 100,
      detail: () => `still alive: ${pids.filter(alive).join(' ')}`,
    });
  });

  it('a stop kills a running task long before its runner would next heartbeat (every 20 s)', async () => {
    // Heartbeat timeout 60 s: the runner beats a third of that apart, 20 s. The run asks it to beat
    // at once when it cancels the execution (pokeTask), so the stop does not wait for the next beat.
    // Without the poke a stop would take up to 20 s; the bound (6 s) leaves room for a loaded machine.
    for (const [i, after] of [100, 1_200, 2_500].entries()) {
      const pidFile = join(h.dataDir, `stop-${i}.pids`);
      const handle = await h.start(
        {
          name: `stop-${i}`,
          group: '/test/dag',
          tasks: [task(h, 'long', [`sleep 120 & echo "$$ $!" > ${pidFile}; wait`])],
        },
        { heartbeatTimeout: 60_000 },
      );
      await h.waitFor(handle, (s) => s.tasks.long?.status === 'running' && existsSync(pidFile));
      const pids = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
      await new Promise((r) => setTimeout(r, after));
      const stoppedAt = Date.now();
      await handle.signal(stopRunSignal, { reason: 'enough', by: 'test' });
      await until('the task processes gone', () => pids.every((p) => !alive(p)), {
        timeoutMs: 10_000,
        everyMs: 20,
        detail: () => `still alive: ${pids.filter(alive).join(' ')}`,
      });
      const killedIn = Date.now() - stoppedAt;
      console.log(`stop ${after} ms after the task started: processes gone in ${killedIn} ms`);
      const s: RunState = await handle.result();
      expect(s.tasks.long!.status).toBe('cancelled');
      expect(s.result).toBe('stopped');
      expect(killedIn, `stop ${after} ms after the task started`).toBeLessThan(6_000);
    }
  });

  it('holds a needs_approval task until it is approved', async () => {
    const handle = await h.start({
      name: 'approval',
      group: '/test/dag',
      tasks: [task(h, 'build', ['true']), task(h, 'deploy', ['true'], { depends: ['build'], needs_approval: true })],
    });
    await h.waitFor(handle, (s) => s.tasks.build?.status === 'success');
    await new Promise((r) => setTimeout(r, 500));
    expect((await h.state(handle)).tasks.deploy!.status).toBe('pending');
    await handle.executeUpdate('approveTask', {
      args: [{ task: 'deploy', by: 'alice', operator: signedApproval(handle.workflowId, 'deploy', 'alice') }],
    });
    const s: RunState = await handle.result();
    expect(s.tasks.deploy!.status).toBe('success');
    expect(s.tasks.deploy!.approval.approvedBy).toBe('alice');
    expect(ms(s.tasks.deploy!.startedAt)).toBeGreaterThanOrEqual(ms(s.tasks.deploy!.approval.approvedAt));
  });
});
