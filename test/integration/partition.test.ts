/**
 * A runner on a host of its own (a network namespace reaching Temporal through its link, issue 14)
 * cut off mid-task for longer than the heartbeat timeout, then reconnected, against the real dev
 * server: the run calls the task lost, the runner reports how it truly ended once its link is
 * back, nothing runs twice, and the run finishes. Then the control worker cut off instead: the run
 * waits and goes on once its link is back.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, task, type Harness } from '../helpers/harness';
import { createTestHost, type TestHost } from '../helpers/netns';
import { join } from 'node:path';
import { killAll, registerRunner, serveRunner, startControlProcess } from '../helpers/processes';
import { fileLines, sharedFile } from '../helpers/shared-files';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

/** Fast registry timings, as the other runner tests use. */
const SETTINGS = { slots: 2, heartbeatMs: 1_000, pingMs: 1_000, watchdogMs: 6_000 };

let h: Harness;
const hosts: TestHost[] = [];
beforeAll(async () => {
  h = await startHarness({ runners: [] });
});
afterEach(async () => {
  await killAll();
  for (const host of hosts.splice(0)) await host.remove();
});
afterAll(async () => {
  await h?.stop();
});

describe('a runner on a host of its own', () => {
  it('cut off mid-task: the task is lost, then truthfully reported once the link is back; nothing runs twice', async () => {
    const host = await createTestHost(h.address);
    hosts.push(host);
    const name = uniqueName('far');
    const pool = uniqueName('pool');
    const token = await registerRunner(h.client, h.controlQueue, { name, pool, settings: SETTINGS });
    const proc = serveRunner({ address: host.temporalAddress, root: h.dataDir, name, pool, token, netns: host.name });
    await until('the runner serving through its link', () => / serving pool /.test(proc.output()), {
      timeoutMs: 60_000,
      detail: () => proc.output(),
    });
    const starts = sharedFile(h.dataDir, `${name}.starts`);
    const ends = sharedFile(h.dataDir, `${name}.ends`);
    const handle = await h.start(
      {
        name: 'partition',
        tasks: [task(h, 'work', [`echo start >> ${starts}; sleep 20; echo end >> ${ends}`], { pool })],
      },
      { heartbeatTimeout: '5s' },
    );
    await until('the task started', () => fileLines(starts).length === 1, { timeoutMs: 60_000, everyMs: 100 });
    const startedAt = Date.now();

    host.cut();
    const cutAt = Date.now();
    const lost = await h.waitFor(handle, (s) => s.tasks.work?.status === 'lost', 60_000);
    const lostAfterMs = Date.now() - cutAt;
    expect(lost.tasks.work?.reason).toMatch(/stopped heartbeating/);
    // The task goes on over there, cut off: it ends while the link is still down.
    await until('the task ending on its host', () => fileLines(ends).length === 1, { timeoutMs: 60_000, everyMs: 200 });
    host.restore();
    const restoredAt = Date.now();

    const done = await h.waitFor(handle, (s) => s.phase === 'finished', 120_000);
    const reportedAfterMs = Date.now() - restoredAt;
    console.log(
      `cut ${cutAt - startedAt} ms into the task; lost ${lostAfterMs} ms after the cut; link back after ${restoredAt - cutAt} ms; finished ${reportedAfterMs} ms later`,
    );
    expect(done.result, JSON.stringify(done.tasks.work)).toBe('success');
    expect(done.tasks.work).toMatchObject({ status: 'success', exitCode: 0, attempts: 1, runner: name });
    expect(fileLines(starts)).toEqual(['start']);
    expect(fileLines(ends)).toEqual(['end']);
  }, 240_000);

  it('a control worker cut off mid-run: the run waits, then goes on once its link is back; nothing runs twice', async () => {
    const host = await createTestHost(h.address);
    hosts.push(host);
    const controlQueue = uniqueName('control-far');
    const pool = uniqueName('pool');
    await h.startRunner({ name: uniqueName('near'), pool });
    const counter = sharedFile(h.dataDir, `${controlQueue}.count`);
    // In-process runners have no registry record (no signing key): this test is not about identity.
    const control = startControlProcess({
      address: host.temporalAddress,
      controlQueue,
      logFile: join(h.dataDir, `${controlQueue}.log`),
      requireRunnerProofs: false,
      netns: host.name,
    });
    const handle = await h.client.workflow.start('runWorkflow', {
      taskQueue: controlQueue,
      workflowId: `run/test/partition/${controlQueue}`,
      args: [
        {
          spec: {
            name: 'control-cut',
            group: '/test/partition',
            tasks: [
              task(h, 'first', [`echo first >> ${counter}`, 'sleep 3'], { pool }),
              task(h, 'second', [`echo second >> ${counter}`], { pool, depends: ['first'] }),
            ],
          },
        },
      ],
    });
    await until('the first task started', () => fileLines(counter).length === 1, {
      timeoutMs: 120_000,
      everyMs: 100,
      detail: () => control.output(),
    });
    host.cut();
    const cutAt = Date.now();
    // The first task ends meanwhile (its runner is not cut off); nothing can dispatch the second.
    await new Promise((r) => setTimeout(r, 15_000));
    expect(fileLines(counter)).toEqual(['first']);
    host.restore();
    const restoredAt = Date.now();
    const done = await h.waitFor(handle, (s) => s.phase === 'finished', 120_000);
    console.log(
      `control worker cut off for ${restoredAt - cutAt} ms; the run finished ${Date.now() - restoredAt} ms after its link was back`,
    );
    expect(done.result, JSON.stringify(done.tasks)).toBe('success');
    expect(done.tasks.first?.attempts).toBe(1);
    expect(fileLines(counter)).toEqual(['first', 'second']);
  }, 300_000);
});
