/**
 * Runs on EC2 fleet instances, end to end against moto and the real dev server: a task that
 * names a fleet resource class claims an instance (the fleet's `provision`), runs on that
 * instance's runner (a real `runfleet runner serve`, started the way the instance's user data
 * says, with the token read from it), and gives the instance back (`release`) when it ends.
 */
import { TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunfleetClient } from '../../src/client/client';
import { KeyRing, createDataConverter } from '../../src/codec';
import { startFleetTestbed, type FleetTestbed } from '../helpers/fleet-testbed';
import { workflowBundle } from '../helpers/harness';
import { killAll, startRunnerProcess, type Proc } from '../helpers/processes';
import { temporalAddress } from '../helpers/temporal';
import { until } from '../helpers/until';

const ROOT = path.resolve(__dirname, '..', '..');

let bed: FleetTestbed;
let runs: RunfleetClient;

beforeAll(async () => {
  bed = await startFleetTestbed({
    projectRoot: ROOT,
    temporalAddress: temporalAddress(),
    workflowBundle: await workflowBundle(),
    withStore: true,
  });
  await bed.startWorker();
  runs = await RunfleetClient.connect({
    address: temporalAddress(),
    namespace: 'default',
    controlTaskQueue: bed.controlQueue,
    dataConverter: createDataConverter({ keys: new KeyRing() }),
  });
});

afterAll(async () => {
  await killAll();
  await runs?.close();
  await bed?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A fleet of one warm instance (class `small`, maxInstances 1) and its real runner, started as
 * the instance's user data says: named after the instance, with the token read from moto.
 */
async function fleetOfOne(prefix: string): Promise<{ name: string; id: string; runner: Proc; stateDir: string }> {
  const name = bed.uniqueFleet(prefix);
  await bed.fleet.apply(
    bed.spec(name, {
      resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 1, maxInstances: 1 }],
      registrationTimeout: '1h',
      runnerSettings: { heartbeatMs: 1_000 },
    }),
  );
  const [id] = (await bed.fleet.status(name)).records.map((r) => r.instanceId) as [string];
  const stateDir = path.join(mkdtempSync(path.join(tmpdir(), 'rf-fleet-run-')), 'state');
  const runner = startRunnerProcess({
    address: temporalAddress(),
    name: id,
    pool: `${name}-small`,
    dataDir: stateDir,
    token: await bed.userDataToken(id),
    // Task logs go to the bed's bucket, as a fleet's instances would ship them.
    env: bed.s3?.env ?? {},
  });
  return { name, id, runner, stateDir };
}

describe('a task on a fleet resource class', () => {
  it('claims an instance, runs on its runner, releases it; the next run reuses it', async () => {
    const { name, id } = await fleetOfOne('run');

    const spec = (run: string) => ({
      name: run,
      tasks: [
        { name: 'build', steps: ['echo built on $(hostname)'], fleet: { name, class: 'small' } },
        { name: 'after', steps: ['true'], depends: ['build'], fleet: { name, class: 'small' } },
      ],
    });
    for (const run of ['first', 'second']) {
      const submitted = await runs.submitRun(spec(run));
      const done = await runs.waitRun(submitted.workflowId);
      expect(done.result, JSON.stringify(done.tasks, null, 1)).toBe('success');
      expect(done.tasks.build).toMatchObject({ status: 'success', runner: id });
      expect(done.tasks.after).toMatchObject({ status: 'success', runner: id });
      // Released after each task: the instance is idle again, held by nobody.
      const rec = (await bed.fleet.status(name)).records.find((r) => r.instanceId === id);
      expect(rec).toMatchObject({ state: 'idle', claimedBy: null, runner: id });
      expect(rec?.version).toBeGreaterThan(3); // claimed -> running -> idle, twice per run
    }
    expect((await bed.fleet.status(name)).records).toHaveLength(1); // maxInstances 1: always the same one
  });

  it("keeps a task's log readable after its instance is terminated (from the object store)", async () => {
    const { name, id, runner, stateDir } = await fleetOfOne('runlog');
    const submitted = await runs.submitRun({
      name: 'logged',
      tasks: [{ name: 'build', steps: ['echo "built on $RUNFLEET_RUNNER"'], fleet: { name, class: 'small' } }],
    });
    const done = await runs.waitRun(submitted.workflowId);
    expect(done.result).toBe('success');
    // The instance goes for good: its runner dies with it, and its disk.
    runner.kill('SIGKILL');
    await runner.exited;
    rmSync(stateDir, { recursive: true, force: true });
    await bed.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    const log = await runs.readTaskLog(submitted.workflowId, 'build');
    expect(log.source).toBe('store');
    expect(log.complete).toBe(true);
    expect(log.data).toContain(`built on ${id}`);
  });

  it('waits, saying so, while its class is at maxInstances, and runs once an instance is released', async () => {
    const { name, id } = await fleetOfOne('runw');
    // Someone else holds the only instance.
    const other = await bed.fleet.provision(name, { resourceClass: 'small', requestId: 'other-job', waitMs: 30_000 });
    expect(other.instanceId).toBe(id);
    const submitted = await runs.submitRun({
      name: 'queued',
      tasks: [{ name: 'build', steps: ['true'], fleet: { name, class: 'small' } }],
    });
    let reason: string | null | undefined;
    await until(
      'the task waiting for an instance',
      async () => {
        reason = (await runs.getRun(submitted.workflowId)).tasks.build?.reason;
        return reason?.startsWith('waiting for an instance');
      },
      { timeoutMs: 10_000, everyMs: 100, detail: () => `last reason: ${reason}` },
    );
    expect(reason).toContain(`waiting for an instance of fleet "${name}" class "small"`);
    expect(reason).toContain('at maxInstances (1)');
    await bed.fleet.release(name, { instanceId: id, requestId: 'other-job' });
    const done = await runs.waitRun(submitted.workflowId);
    expect(done.result).toBe('success');
    expect(done.tasks.build).toMatchObject({ status: 'success', runner: id });
  });

  it('fails the task with a clear reason when the fleet cannot provide an instance; the run ends', async () => {
    const name = bed.uniqueFleet('runx');
    await bed.fleet.apply(
      bed.spec(name, { resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 0, maxInstances: 1 }] }),
    );
    const submitted = await runs.submitRun({
      name: 'no-such-class',
      tasks: [
        { name: 'a', steps: ['true'], fleet: { name, class: 'huge' } },
        { name: 'b', steps: ['true'], fleet: { name: 'nosuchfleet', class: 'small' } },
      ],
    });
    const done = await Promise.race([runs.waitRun(submitted.workflowId), sleep(60_000).then(() => null)]);
    expect(done).not.toBeNull();
    expect(done?.result).toBe('failed');
    expect(done?.tasks.a?.status).toBe('failed');
    expect(done?.tasks.a?.reason).toContain(`no instance of fleet "${name}" class "huge"`);
    expect(done?.tasks.a?.reason).toContain('has no resource class "huge"');
    expect(done?.tasks.b?.reason).toContain('no fleet "nosuchfleet"');
  });
});
