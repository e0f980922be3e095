/**
 * At most once: a task that started is never started again by the scheduler. Runners and
 * control workers here are real processes (the `runfleet` CLI), killed with SIGKILL.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunState } from '../../src/types';
import { startHarness, task, type Harness } from '../helpers/harness';
import { sharedFile } from '../helpers/shared-files';
import { killAll, registerRunner, startControlProcess, startRunnerProcess } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { stopRunSignal } from '../../workflows/run-messages';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  await h?.stop();
});

function lines(file: string): number {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
}

describe('at most once', () => {
  it('marks the task lost when its runner is killed -9, never runs it again, and waits for the runner', async () => {
    const name = uniqueName('victim');
    const dir = join(h.dataDir, name);
    mkdirSync(dir, { recursive: true });
    const counter = sharedFile(h.dataDir, `${name}.count`);
    const token = await registerRunner(h.client, h.controlQueue, { name, pool: h.pool });
    const runner = startRunnerProcess({ address: h.address, name, pool: h.pool, dataDir: dir, token });
    const handle = await h.start(
      {
        name: 'deploy',
        group: '/test/at-most-once',
        tasks: [
          task(h, 'deploy', [`echo ran >> ${counter}`, 'sleep 60']),
          task(h, 'after', ['true'], { depends: ['deploy'] }),
        ],
      },
      { heartbeatTimeout: '4s' },
    );
    await h.waitFor(handle, (s) => s.tasks.deploy?.status === 'running' && lines(counter) === 1, 90_000);
    runner.kill('SIGKILL');
    await runner.exited;

    // Lost is not final: the runner may still report how the task ended; the run waits.
    const lost = await h.waitFor(handle, (s) => s.tasks.deploy?.status === 'lost', 60_000);
    expect(lost.tasks.deploy!.reason).toContain(`runner "${name}" stopped heartbeating`);
    expect(lost.tasks.deploy!.lostAt).toEqual(expect.any(String));
    expect(lost.tasks.deploy!.runner).toBe(name);
    expect(lost.tasks.deploy!.attempts).toBe(1);
    expect(lost.tasks.after!.status).toBe('pending');
    expect(lost.phase).toBe('running');
    expect(lost.result).toBe('unknown');

    // A fresh runner on the same pool takes nothing: the lost task is not retried.
    const other = uniqueName('other');
    mkdirSync(join(h.dataDir, other), { recursive: true });
    const otherToken = await registerRunner(h.client, h.controlQueue, { name: other, pool: h.pool });
    startRunnerProcess({
      address: h.address,
      name: other,
      pool: h.pool,
      dataDir: join(h.dataDir, other),
      token: otherToken,
    });
    await new Promise((r) => setTimeout(r, 3_000));
    expect(lines(counter)).toBe(1);
    expect((await h.state(handle)).tasks.deploy!.status).toBe('lost');

    // A stop ends the wait: nothing to kill, the lost task is cancelled with the stop's reason.
    await handle.signal(stopRunSignal, { reason: 'giving up on it', by: 'test' });
    const s: RunState = await handle.result();
    expect(s.tasks.deploy!.status).toBe('cancelled');
    expect(s.tasks.deploy!.reason).toContain('stopped by test: giving up on it');
    expect(s.tasks.deploy!.reason).toContain(`lost on runner "${name}", nothing to kill`);
    expect(s.tasks.after!.status).toBe('cancelled');
    expect(s.phase).toBe('finished');
    expect(s.result).toBe('stopped');
    expect(lines(counter)).toBe(1);
  });

  it('starts an idempotent task lost with its runner again on another runner; a non-idempotent one is lost', async () => {
    const pool = uniqueName('idem-pool');
    const name = uniqueName('idem-victim');
    const dir = join(h.dataDir, name);
    mkdirSync(dir, { recursive: true });
    // Each attempt writes which runner ran it and its attempt number; both wait for the gate.
    const safeLog = sharedFile(h.dataDir, `${name}.safe`);
    const deployLog = sharedFile(h.dataDir, `${name}.deploy`);
    const gate = join(h.dataDir, `${name}.gate`);
    const waitGate = `for i in $(seq 900); do test -f ${gate} && exit 0; sleep 0.2; done; exit 9`;
    const record = (file: string) => `echo "$RUNFLEET_RUNNER $RUNFLEET_ATTEMPT" >> ${file}`;
    const token = await registerRunner(h.client, h.controlQueue, { name, pool, settings: { slots: 2 } });
    const victim = startRunnerProcess({ address: h.address, name, pool, dataDir: dir, token });
    const handle = await h.start(
      {
        name: 'idempotent',
        group: '/test/at-most-once',
        tasks: [
          // A later attempt does not wait: only the first, on the victim, is still running at the kill.
          {
            name: 'safe',
            pool,
            idempotent: true,
            steps: [record(safeLog), `test $RUNFLEET_ATTEMPT -gt 1 || { ${waitGate}; }`],
          },
          { name: 'deploy', pool, steps: [record(deployLog), waitGate] },
          { name: 'after', pool, steps: ['true'], depends: ['safe'] },
        ],
      },
      { heartbeatTimeout: '4s' },
    );
    await h.waitFor(
      handle,
      (s) =>
        s.tasks.safe?.status === 'running' &&
        s.tasks.deploy?.status === 'running' &&
        lines(safeLog) === 1 &&
        lines(deployLog) === 1,
      90_000,
    );
    victim.kill('SIGKILL');
    await victim.exited;

    const other = uniqueName('idem-other');
    await h.startRunner({ name: other, pool });
    const s = await h.waitFor(
      handle,
      (st) =>
        st.tasks.safe?.status === 'success' &&
        st.tasks.after?.status === 'success' &&
        st.tasks.deploy?.status === 'lost',
      90_000,
    );
    expect(s.tasks.safe).toMatchObject({ status: 'success', attempts: 2, runner: other });
    expect(readFileSync(safeLog, 'utf8').trim().split('\n')).toEqual([`${name} 1`, `${other} 2`]);
    expect(s.tasks.deploy).toMatchObject({ status: 'lost', attempts: 1, runner: name });
    expect(s.tasks.deploy!.reason).toContain('not retried');
    expect(readFileSync(deployLog, 'utf8').trim().split('\n')).toEqual([`${name} 1`]);
    expect(s.phase).toBe('running');

    // The victim comes back: the non-idempotent task's own outcome settles it, and the run succeeds.
    writeFileSync(gate, '');
    startRunnerProcess({ address: h.address, name, pool, dataDir: dir });
    const final: RunState = await handle.result();
    expect(final.result).toBe('success');
    expect(final.tasks.deploy).toMatchObject({ status: 'success', attempts: 1, runner: name });
    expect(final.tasks.safe).toMatchObject({ status: 'success', attempts: 2, runner: other });
    expect(final.tasks.after!.status).toBe('success');
    expect(lines(deployLog)).toBe(1);
    expect(lines(safeLog)).toBe(2);
  });

  it('retries a reservation nobody answers without starting anything, then runs once', async () => {
    const counter = sharedFile(h.dataDir, 'late.count');
    const handle = await h.start(
      { name: 'late', group: '/test/at-most-once', tasks: [task(h, 'once', [`echo ran >> ${counter}`])] },
      { reservationTimeout: '1s' },
    );
    const waiting = await h.waitFor(handle, (s) => (s.tasks.once?.reason ?? '').includes('waiting for a runner'));
    expect(waiting.tasks.once!.status).toBe('pending');
    expect(waiting.tasks.once!.attempts).toBe(0);
    await new Promise((r) => setTimeout(r, 2_500)); // at least two more unanswered reservations
    expect(lines(counter)).toBe(0);

    await h.startRunner({ name: uniqueName('late-runner') });
    const s: RunState = await handle.result();
    expect(s.result).toBe('success');
    expect(s.tasks.once!.attempts).toBe(1);
    expect(lines(counter)).toBe(1);
  });

  it('finishes a run with the same result when the control worker is killed mid-run', async () => {
    const controlQueue = uniqueName('control-proc');
    const logDir = join(h.dataDir, controlQueue);
    mkdirSync(logDir, { recursive: true });
    const runnerName = uniqueName('steady');
    await h.startRunner({ name: runnerName, slots: 4 });
    const counter = sharedFile(h.dataDir, `${controlQueue}.count`);
    // In-process runners have no registry record (no signing key): this test is not about identity.
    const control = startControlProcess({
      address: h.address,
      controlQueue,
      logFile: join(logDir, 'control-1.log'),
      requireRunnerProofs: false,
    });

    const handle = await h.client.workflow.start('runWorkflow', {
      taskQueue: controlQueue,
      workflowId: `run/test/control-restart/${controlQueue}`,
      args: [
        {
          spec: {
            name: 'restart',
            group: '/test/control-restart',
            tasks: [
              task(h, 'first', [`echo first >> ${counter}`, 'sleep 3']),
              task(h, 'second', [`echo second >> ${counter}`], { depends: ['first'] }),
              task(h, 'fails', ['exit 4'], { depends: ['first'], ignore_failure: true }),
            ],
          },
        },
      ],
    });
    await h.waitFor(handle, (s) => s.tasks.first?.status === 'running', 90_000);
    control.kill('SIGKILL');
    await control.exited;
    await new Promise((r) => setTimeout(r, 4_000)); // "first" finishes while no control worker runs

    startControlProcess({
      address: h.address,
      controlQueue,
      logFile: join(logDir, 'control-2.log'),
      requireRunnerProofs: false,
    });
    const s: RunState = await handle.result();
    expect(s.result).toBe('success');
    expect(s.tasks.first!.status).toBe('success');
    expect(s.tasks.second!.status).toBe('success');
    expect(s.tasks.fails!.status).toBe('failed');
    expect(readFileSync(counter, 'utf8').trim().split('\n')).toEqual(['first', 'second']);
  });
});
