/**
 * Fleet refresh against moto (a real EC2 API) and the real dev server: plan/apply idempotence,
 * launch template versions, expiry with artifact deletion, orphans, gone instances, tokens.
 */
import {
  DescribeInstancesCommand,
  DescribeLaunchTemplateVersionsCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FleetClient } from '../../src/client/fleet';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tokenOf } from '../../src/security/operator';
import { RunfleetError } from '../../src/errors';
import { templateName } from '../../src/fleet/plan';
import { startFleetTestbed, type FleetTestbed } from '../helpers/fleet-testbed';
import { workflowBundle } from '../helpers/harness';
import { startRunnerProcess } from '../helpers/processes';
import { temporalAddress } from '../helpers/temporal';
import { until } from '../helpers/until';

let bed: FleetTestbed;
beforeAll(async () => {
  bed = await startFleetTestbed({
    projectRoot: path.resolve(__dirname, '..', '..'),
    temporalAddress: temporalAddress(),
    workflowBundle: await workflowBundle(),
  });
  await bed.startWorker();
});
afterAll(async () => {
  await bed?.stop();
});
beforeEach(async () => {
  await bed.resetMoto();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function ec2State(ids: string[]): Promise<Record<string, string>> {
  const out = await bed.ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
  return Object.fromEntries(
    (out.Reservations ?? [])
      .flatMap((r) => r.Instances ?? [])
      .map((i) => [i.InstanceId as string, i.State?.Name as string]),
  );
}

describe('fleet plan and apply', () => {
  it('plan, apply, plan: the second plan shows no change and a no-drift refresh makes no mutating call', async () => {
    const name = bed.uniqueFleet();
    const spec = bed.spec(name, {
      resourceClasses: [
        { name: 'small', instanceType: 't3.small', minIdle: 2, maxInstances: 5 },
        { name: 'large', instanceType: 'c5.2xlarge', minIdle: 0, maxInstances: 5 },
      ],
    });
    bed.resetCalls();
    const first = await bed.fleet.plan(spec);
    expect(bed.calls.mutating).toBe(0);
    const actions = first.items.map((i) => `${i.kind}:${i.name}:${i.action}`);
    expect(actions).toContain(`launch-template:${templateName(name, 'small')}:create`);
    expect(actions).toContain(`launch-template:${templateName(name, 'large')}:create`);
    expect(actions).toContain(`pool:${name}-small:launch`);
    expect(actions).toContain('token:registration token:rotate');

    const applied = await bed.fleet.apply(spec);
    expect(applied.error).toBeNull();
    expect(applied.templatesCreated).toBe(2);
    expect(applied.launched).toBe(2);
    expect(applied.tokenRotated).toBe(true);

    bed.resetCalls();
    const second = await bed.fleet.plan(spec);
    expect(second.changes).toBe(0);
    expect(second.items.every((i) => i.action === 'nothing')).toBe(true);

    // A refresh with no drift reads EC2 and changes nothing.
    bed.resetCalls();
    const again = await bed.fleet.apply(spec);
    expect(again.changes).toBe(0);
    expect(again.ec2Calls.mutating).toBe(0);
    expect(bed.calls.mutating).toBe(0);
    expect(bed.calls.read).toBeGreaterThan(0);

    const status = await bed.fleet.status(name);
    expect(status.pools.map((p) => [p.resourceClass, p.counts])).toEqual([
      ['small', { created: 2 }],
      ['large', {}],
    ]);
  });

  it('a changed AMI makes exactly one new launch template version, made default, and nothing else', async () => {
    const name = bed.uniqueFleet();
    const spec = bed.spec(name);
    await bed.fleet.apply(spec);
    const changed = { ...spec, launchTemplate: { ...spec.launchTemplate, ami: 'ami-0bbbbbbb' } };

    const plan = await bed.fleet.plan(changed);
    const drift = plan.items.filter((i) => i.action !== 'nothing');
    expect(drift).toHaveLength(1);
    expect(drift[0]).toMatchObject({
      kind: 'launch-template',
      action: 'update',
      changes: [{ field: 'imageId', from: '"ami-0aaaaaaa"', to: '"ami-0bbbbbbb"' }],
    });

    bed.resetCalls();
    const r = await bed.fleet.apply(changed);
    expect(r.templatesUpdated).toBe(1);
    expect(bed.calls.byCommand).toMatchObject({ CreateLaunchTemplateVersion: 1, ModifyLaunchTemplate: 1 });
    expect(bed.calls.mutating).toBe(2);
    await bed.fleet.apply(changed); // applying it again adds nothing

    const versions = await bed.ec2.send(
      new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: templateName(name, 'small') }),
    );
    expect(versions.LaunchTemplateVersions).toHaveLength(2);
    const def = versions.LaunchTemplateVersions?.find((v) => v.DefaultVersion);
    expect(def?.VersionNumber).toBe(2);
    expect(def?.LaunchTemplateData?.ImageId).toBe('ami-0bbbbbbb');
    expect((await bed.fleet.plan(changed)).changes).toBe(0);
  });

  it('rejects an invalid desired state naming every invalid field, and applies nothing', async () => {
    const name = bed.uniqueFleet();
    const bad = bed.spec(name, {
      launchTemplate: { ami: 'not-an-ami', userData: 'echo hi', securityGroups: [] },
      resourceClasses: [{ name: 'small', instanceType: 'huge', minIdle: 5, maxInstances: 2 }],
      subnets: ['subnet-x_'],
      maxLifetime: 'forever',
    } as never);
    const err = await bed.fleet.apply(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunfleetError);
    expect((err as RunfleetError).code).toBe('InvalidConfig');
    const paths = ((err as RunfleetError).details as { problems: { path: string }[] }).problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'launchTemplate.ami',
        'launchTemplate.userData',
        'launchTemplate.securityGroups',
        'resourceClasses.small.instanceType',
        'resourceClasses.small.minIdle',
        'subnets[0]',
        'maxLifetime',
      ]),
    );
    // Sent straight to the workflow (as `temporal workflow update` would), the validator refuses it too.
    const direct = await bed.temporal.workflow
      .getHandle(`fleet/${name}`)
      .executeUpdate('apply', { args: [bad] })
      .catch((e: unknown) => e);
    expect(String(direct)).toMatch(/not found|invalid fleet spec/i);
    const all = await bed.ec2.send(new DescribeInstancesCommand({}));
    expect(all.Reservations ?? []).toHaveLength(0);
  });
});

describe('a desired state EC2 refuses', () => {
  it("fails apply with InvalidConfig naming EC2's reason, keeps it as desired, and a fixed one converges", async () => {
    const name = bed.uniqueFleet('refused');
    const spec = bed.spec(name, {
      resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 1, maxInstances: 3 }],
    });
    const bad = { ...spec, subnets: ['subnet-0deadbeef'] };
    const err = await bed.fleet.apply(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunfleetError);
    expect((err as RunfleetError).code).toBe('InvalidConfig');
    expect((err as Error).message).toMatch(/RunInstances: InvalidSubnetID/);
    const s = await bed.fleet.status(name);
    expect(s.lastRefresh?.error).toMatch(/InvalidSubnetID/);
    expect(s.records).toEqual([]);
    // The templates were made; the next refresh retries the launch, it does not revert anything.
    const again = await bed.fleet.refresh(name).catch((e: unknown) => e);
    expect((again as RunfleetError).code).toBe('InvalidConfig');
    const fixed = await bed.fleet.apply(spec);
    expect(fixed).toMatchObject({ error: null, launched: 1, templatesCreated: 0 });
  });
});

describe('fleet maintenance', () => {
  it('terminates instances past their threshold, deletes their artifacts, and leaves the rest', async () => {
    const name = bed.uniqueFleet();
    const spec = bed.spec(name, {
      resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 3, maxInstances: 10 }],
      maxIdleTime: '3s',
      registrationTimeout: '1h',
    });
    await bed.fleet.apply(spec);
    const ids = (await bed.fleet.status(name)).records.map((r) => r.instanceId);
    expect(ids).toHaveLength(3);
    const [a, b, c] = ids as [string, string, string];
    await bed.registerInstance(name, a);
    await bed.registerInstance(name, b);
    // b is claimed by a task (lease 1h): not expired. c never registers (1h to do so): not expired.
    const claimed = await bed.fleet.provision(name, { resourceClass: 'small', requestId: 'job-1' });
    const idle = claimed.instanceId === a ? b : a;
    expect(claimed.launched).toBe(false);
    await sleep(3_500);

    const r = await bed.fleet.refresh(name);
    expect(r.error).toBeNull();
    expect(r.markedTerminated).toBe(1);
    expect(r.confirmedTerminated).toBe(1);
    const states = await ec2State([idle, claimed.instanceId, c]);
    expect(['shutting-down', 'terminated']).toContain(states[idle]);
    expect(states[claimed.instanceId]).toBe('running');
    expect(states[c]).toBe('running');

    const s = await bed.fleet.status(name);
    expect(s.records.find((x) => x.instanceId === idle)).toBeUndefined();
    expect(Object.keys(s.registrations)).toEqual([claimed.runner]);
    expect(s.records.find((x) => x.instanceId === claimed.instanceId)?.state).toBe('claimed');
    expect(s.records.find((x) => x.instanceId === c)?.state).toBe('created');
    // The terminated instance's registry runner is purged; the others' are untouched.
    expect((await bed.registry.get(idle)).status).toBe('deleted');
    expect((await bed.registry.get(claimed.instanceId)).status).not.toBe('deleted');
    expect((await bed.registry.get(c)).status).toBe('registered');
  });

  it('terminates tagged instances without a record and closes records whose instance is gone', async () => {
    const name = bed.uniqueFleet();
    const spec = bed.spec(name, {
      resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 2, maxInstances: 10 }],
    });
    await bed.fleet.apply(spec);
    const [keep, gone] = (await bed.fleet.status(name)).records.map((r) => r.instanceId) as [string, string];
    const orphan = await bed.ec2.send(
      new RunInstancesCommand({
        ImageId: 'ami-0aaaaaaa',
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'runfleet:fleet', Value: name }] }],
      }),
    );
    const orphanId = orphan.Instances?.[0]?.InstanceId as string;
    const stranger = await bed.ec2.send(new RunInstancesCommand({ ImageId: 'ami-0aaaaaaa', MinCount: 1, MaxCount: 1 }));
    const strangerId = stranger.Instances?.[0]?.InstanceId as string;
    await bed.ec2.send(new TerminateInstancesCommand({ InstanceIds: [gone] }));
    await sleep(1_100); // past orphanGrace

    const r = await bed.fleet.refresh(name);
    expect(r.orphansTerminated).toBe(1);
    expect(r.closed).toBe(1);
    const states = await ec2State([keep, orphanId, strangerId]);
    expect(['shutting-down', 'terminated']).toContain(states[orphanId]);
    expect(states[keep]).toBe('running');
    expect(states[strangerId]).toBe('running'); // not tagged as ours: not ours to touch
    const records = (await bed.fleet.status(name)).records.map((x) => x.instanceId);
    expect(records).toContain(keep);
    expect(records).not.toContain(gone);
    expect((await bed.registry.get(gone)).status).toBe('deleted');
    expect((await bed.registry.get(keep)).status).toBe('registered');
  });

  it('terminates an instance whose runner was purged, at once, and refills the warm pool', async () => {
    const name = bed.uniqueFleet();
    await bed.fleet.apply(
      bed.spec(name, { resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 1, maxInstances: 3 }] }),
    );
    const [id] = (await bed.fleet.status(name)).records.map((r) => r.instanceId) as [string];
    await bed.registerInstance(name, id);
    // An operator purges the runner (a lost temporary runner is purged the same way, by the registry).
    await bed.registry.purge(id, { by: 'ops', reason: 'disk failing', waitMs: 0 });
    const s = await until(
      'the purged instance replaced',
      async () => {
        const now = await bed.fleet.status(name);
        return !now.records.some((r) => r.instanceId === id) && now.records.length === 1 ? now : undefined;
      },
      { timeoutMs: 20_000, everyMs: 100 },
    );
    expect(s.records.map((r) => r.instanceId)).not.toContain(id); // no refresh was asked for
    expect(['shutting-down', 'terminated']).toContain((await ec2State([id]))[id]);
    expect(s.records).toHaveLength(1); // the warm pool, refilled
    expect(s.registrations).toEqual({});
  });

  it('refuses a rotated-out token at registration; runners already registered stay', async () => {
    const name = bed.uniqueFleet();
    const spec = bed.spec(name, {
      resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 2, maxInstances: 10 }],
      token: { lifetime: '2s', rotation: '1s' },
    });
    await bed.fleet.apply(spec);
    const [a, b] = (await bed.fleet.status(name)).records.map((r) => r.instanceId) as [string, string];
    const old = await bed.userDataToken(b);
    const oldA = await bed.userDataToken(a);
    expect(oldA).not.toBe(old); // one fleet token, a token of its own for each instance
    // The registry runner of each instance is temporary, in the class's pool, linked to the instance.
    expect(await bed.registry.get(a)).toMatchObject({
      pool: `${name}-small`,
      temporary: true,
      fleet: { name, instanceId: a },
      status: 'registered',
    });
    await bed.registerInstance(name, a);
    await sleep(2_200);
    const r = await bed.fleet.refresh(name);
    expect(r.tokenRotated).toBe(true);

    // b booted too late: the token in its user data has expired.
    const refused = await bed.registerInstance(name, b).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RunfleetError);
    expect((refused as RunfleetError).code).toBe('TokenRejected');
    expect((refused as Error).message).toMatch(/expired/);
    // Well formed, never issued: the registry knows no such token.
    const forgedToken = tokenOf('0123abcd', randomBytes(32)).token;
    const forged = await bed.registerInstance(name, b, forgedToken).catch((e: unknown) => e);
    expect((forged as RunfleetError).code).toBe('TokenRejected');
    expect((forged as Error).message).toMatch(/unknown token/);
    // A token registers one runner once: a's token cannot register a again, nor b.
    const replayed = await bed.registerInstance(name, a, oldA).catch((e: unknown) => e);
    expect((replayed as RunfleetError).code).toBe('TokenRejected');
    expect((replayed as Error).message).toMatch(/already used/);
    const borrowed = await bed.registerInstance(name, b, oldA).catch((e: unknown) => e);
    expect((borrowed as RunfleetError).code).toBe('TokenRejected');

    // A new launch carries the fresh token, which registers.
    await bed.fleet.apply({ ...spec, resourceClasses: [{ ...spec.resourceClasses[0]!, minIdle: 3 }] });
    const c = (await bed.fleet.status(name)).records.find((x) => x.instanceId !== a && x.instanceId !== b)
      ?.instanceId as string;
    const fresh = await bed.userDataToken(c);
    expect(fresh).not.toBe(old);
    await bed.registerInstance(name, c);
    const s = await bed.fleet.status(name);
    expect(Object.keys(s.registrations).sort()).toEqual([a, c].sort());
    expect(s.records.find((x) => x.instanceId === a)?.state).toBe('idle'); // a, registered before, stays
    expect(s.records.find((x) => x.instanceId === b)?.state).toBe('created');
    expect(s.tokens.every((t) => !('hash' in t))).toBe(true);
  });
});

describe('a real runner on a fleet instance', () => {
  it('starts as its user data says, registers with the fleet token, and wipes itself when its instance is terminated', async () => {
    const name = bed.uniqueFleet('real');
    await bed.fleet.apply(
      bed.spec(name, {
        resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 1, maxInstances: 2 }],
        maxIdleTime: '4s',
        registrationTimeout: '1h',
        runnerSettings: { heartbeatMs: 1_000 },
      }),
    );
    const [id] = (await bed.fleet.status(name)).records.map((r) => r.instanceId) as [string];
    const dir = mkdtempSync(path.join(tmpdir(), 'rf-fleet-runner-'));
    const runner = startRunnerProcess({
      address: temporalAddress(),
      name: id,
      pool: `${name}-small`,
      dataDir: path.join(dir, 'state'),
      token: await bed.userDataToken(id),
    });
    try {
      const rec = await until(
        'the instance past created',
        async () => {
          const r = (await bed.fleet.status(name)).records.find((x) => x.instanceId === id);
          return r?.state === 'created' ? undefined : r;
        },
        { timeoutMs: 30_000, everyMs: 100 },
      );
      expect(rec).toMatchObject({ state: 'idle', runner: id });
      // The registry tells the fleet before its answer reaches the runner, which logs it after.
      const registered = `runner ${id} registered with the fleet`;
      await until('the runner to log its registration', () => runner.output().includes(registered), {
        timeoutMs: 10_000,
        everyMs: 100,
      }).catch(() => expect(runner.output()).toContain(registered));
      expect(await bed.registry.get(id)).toMatchObject({ pool: `${name}-small`, temporary: true });

      // Idle too long: terminated in two phases; phase 3 purges the runner, which wipes itself and exits.
      await sleep(Math.max(0, Date.parse(rec.threshold) - Date.now()) + 200);
      await bed.fleet.apply(
        bed.spec(name, { maxIdleTime: '4s', registrationTimeout: '1h', runnerSettings: { heartbeatMs: 1_000 } }),
      );
      expect((await ec2State([id]))[id]).toMatch(/shutting-down|terminated/);
      expect(await Promise.race([runner.exited, sleep(40_000).then(() => 'still running')])).toBe(0);
      expect((await bed.registry.get(id)).status).toBe('deleted');
      expect(existsSync(path.join(dir, 'state', 'identity.json'))).toBe(false);
    } finally {
      runner.kill('SIGKILL');
      await runner.exited;
    }
  });
});

describe('provision and release', () => {
  it('claims an idle instance, keeps the warm pool, and a release past the lifetime terminates', async () => {
    const name = bed.uniqueFleet('prov');
    const spec = bed.spec(name, {
      resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 1, maxInstances: 3 }],
      maxLifetime: '4s',
      maxIdleTime: '4s',
      registrationTimeout: '1h',
    });
    await bed.fleet.apply(spec);
    const [first] = (await bed.fleet.status(name)).records.map((r) => r.instanceId) as [string];
    await bed.registerInstance(name, first);

    const got = await bed.fleet.provision(name, { resourceClass: 'small', requestId: 'job-1' });
    expect(got).toEqual({
      instanceId: first,
      runner: first,
      resourceClass: 'small',
      taskQueue: `runner/${first}`,
      launched: false,
    });
    // The same request again gets the same instance.
    expect(await bed.fleet.provision(name, { resourceClass: 'small', requestId: 'job-1' })).toMatchObject({
      instanceId: first,
    });
    // The claim left the pool below minIdle: a refresh launches a replacement without being asked.
    const replacement = await until(
      'a replacement instance',
      async () => (await bed.fleet.status(name)).records.find((r) => r.instanceId !== first),
      { timeoutMs: 20_000, everyMs: 100 },
    );
    expect(replacement.state).toBe('created');

    await sleep(4_100); // past the lifetime while the task ran
    const released = await bed.fleet.release(name, { instanceId: first, requestId: 'job-1' });
    expect(released).toMatchObject({ state: 'terminated', reason: 'past its lifetime at release' });
    await until(
      'the released instance gone',
      async () => !(await bed.fleet.status(name)).records.some((r) => r.instanceId === first),
      { timeoutMs: 20_000, everyMs: 100 },
    );
    expect(['shutting-down', 'terminated']).toContain((await ec2State([first]))[first]);
  });

  it('launches when nothing is idle and gives up after its wait, leaving the instance to maintenance', async () => {
    const name = bed.uniqueFleet('wait');
    await bed.fleet.apply(bed.spec(name, { registrationTimeout: '1h' }));
    const err = await bed.fleet
      .provision(name, { resourceClass: 'small', requestId: 'job-x', waitMs: 300 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunfleetError);
    expect((err as RunfleetError).code).toBe('InvalidState');
    expect((err as Error).message).toMatch(/no runner registered on i-\w+ within/);
    const [r] = (await bed.fleet.status(name)).records;
    expect(r).toMatchObject({ state: 'created', claimedBy: null });
    const none = await bed.fleet
      .provision(name, { resourceClass: 'small', requestId: 'job-y', launch: false })
      .catch((e: unknown) => e);
    expect((none as RunfleetError).code).toBe('InvalidState');
    const unknown = await bed.fleet
      .provision(name, { resourceClass: 'gpu', requestId: 'job-z' })
      .catch((e: unknown) => e);
    expect((unknown as RunfleetError).code).toBe('NotFound');
  });
});

describe('the fleet CLI and the entity workflow', () => {
  const BIN = path.resolve(__dirname, '..', '..', 'bin', 'runfleet');
  // Asynchronous: the fleet worker runs in this process and must keep serving while the CLI waits.
  const runfleet = (...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const env = {
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|RUNFLEET_)/.test(k))),
        // The data keys of the test run (none): not the checkout's own.
        ...(process.env.RUNFLEET_KEY_FILE ? { RUNFLEET_KEY_FILE: process.env.RUNFLEET_KEY_FILE } : {}),
      };
      const c = spawn(process.execPath, [BIN, '--address', temporalAddress(), ...args], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      c.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  it('runfleet fleet plan, apply, plan, status', async () => {
    const name = bed.uniqueFleet('cli');
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'runfleet-fleet-')), 'fleet.json');
    writeFileSync(
      file,
      JSON.stringify(
        bed.spec(name, { resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 1, maxInstances: 3 }] }),
      ),
    );
    const q = ['--task-queue', bed.taskQueue];

    const plan = await runfleet('fleet', 'plan', file, ...q);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(
      new RegExp(`\\+ create +launch-template runfleet-${name}-small: no such launch template`),
    );
    expect(plan.stdout).toMatch(/\+ launch +pool .*\(1\)/);
    expect(plan.stdout).toMatch(/changes$/m);

    const apply = await runfleet('fleet', 'apply', file, ...q, '--json');
    expect(apply.code).toBe(0);
    expect(JSON.parse(apply.stdout)).toMatchObject({
      templatesCreated: 1,
      launched: 1,
      tokenRotated: true,
      error: null,
    });

    const again = await runfleet('fleet', 'plan', file, ...q);
    expect(again.code).toBe(0);
    expect(again.stdout.trimEnd().split('\n').pop()).toBe(`fleet "${name}": no changes; EC2 matches the desired state`);

    const status = await runfleet('fleet', 'status', name);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`pool small \\(pool/${name}-small, minIdle 1, max 3\\): 1 created`));
    const missing = await runfleet('fleet', 'status', 'nosuchfleet');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no fleet "nosuchfleet"/);
  });

  it('continues as new after its refreshes, with records, tokens and registrations', async () => {
    const fleet = new FleetClient({
      client: bed.temporal,
      taskQueue: bed.taskQueue,
      workflowOptions: { refreshesPerRun: 2, ec2TimeoutMs: 10_000 },
    });
    const name = bed.uniqueFleet('can');
    const spec = bed.spec(name, {
      resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 1, maxInstances: 3 }],
    });
    await fleet.apply(spec);
    const handle = bed.temporal.workflow.getHandle(`fleet/${name}`);
    const firstRun = (await handle.describe()).runId;
    const before = await fleet.status(name);
    const id = before.records[0]?.instanceId as string;
    await bed.registerInstance(name, id);
    await fleet.refresh(name); // the second refresh of this run: it continues as new after it
    await sleep(500);
    expect((await bed.temporal.workflow.getHandle(`fleet/${name}`).describe()).runId).not.toBe(firstRun);
    const after = await fleet.status(name);
    expect(after.records).toEqual([expect.objectContaining({ instanceId: id, state: 'idle', runner: id })]);
    expect(after.tokens).toEqual(before.tokens);
    expect(Object.keys(after.registrations)).toEqual([id]);
    expect((await fleet.plan(spec)).changes).toBe(0);
  });
});

describe('periodic refresh', () => {
  it('refreshes by itself once refreshInterval has passed, woken by its timer alone: a gone instance is replaced', async () => {
    const name = bed.uniqueFleet('tick');
    // 3 s instead of the default minute: long enough to tell the timer's refresh from apply's own.
    const intervalMs = 3_000;
    const applied = await bed.fleet.apply(
      bed.spec(name, {
        refreshInterval: '3s',
        resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 1, maxInstances: 3 }],
      }),
    );
    expect(applied.launched).toBe(1);
    const before = await bed.fleet.status(name);
    const [gone] = before.records.map((r) => r.instanceId) as [string];
    // Drift nobody tells the fleet about: its instance terminated behind its back.
    await bed.ec2.send(new TerminateInstancesCommand({ InstanceIds: [gone] }));

    const after = await until(
      'a refresh replacing the gone instance',
      async () => {
        const s = await bed.fleet.status(name);
        return s.refreshes > before.refreshes && s.records.length === 1 && s.records[0]?.instanceId !== gone
          ? s
          : undefined;
      },
      { timeoutMs: 30_000, everyMs: 100 },
    );
    const [fresh] = after.records.map((r) => r.instanceId) as [string];
    expect((await ec2State([fresh]))[fresh]).toBe('running');
    expect((await bed.registry.get(gone)).status).toBe('deleted');

    // What woke the workflow for the refresh after apply's: a timer, no signal, no update.
    const events = (await bed.temporal.workflow.getHandle(`fleet/${name}`).fetchHistory()).events ?? [];
    const applyDone = events.map((e) => Boolean(e.workflowExecutionUpdateCompletedEventAttributes)).lastIndexOf(true);
    const nextRefresh = events.findIndex((e, i) => i > applyDone && e.activityTaskScheduledEventAttributes);
    expect(applyDone).toBeGreaterThan(0);
    expect(nextRefresh).toBeGreaterThan(applyDone);
    const between = events.slice(applyDone + 1, nextRefresh);
    const fired = between.filter((e) => e.timerFiredEventAttributes);
    expect(fired).toHaveLength(1);
    // Not before its time: that timer was the refresh interval.
    const startedId = Number(fired[0]?.timerFiredEventAttributes?.startedEventId);
    const timer = events.find((e) => Number(e.eventId) === startedId)?.timerStartedEventAttributes;
    expect(Number(timer?.startToFireTimeout?.seconds)).toBe(intervalMs / 1000);
    expect(between.filter((e) => e.workflowExecutionSignaledEventAttributes)).toEqual([]);
    expect(between.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toEqual([]);
  });
});

describe('determinism', () => {
  it('the fleet workflow replays its own history (apply, register, provision, release, expiry, refresh)', async () => {
    const name = bed.uniqueFleet('replay');
    await bed.fleet.apply(
      bed.spec(name, {
        resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 2, maxInstances: 3 }],
        maxIdleTime: '1s',
      }),
    );
    const [a] = (await bed.fleet.status(name)).records.map((r) => r.instanceId) as [string];
    await bed.registerInstance(name, a);
    await bed.fleet.provision(name, { resourceClass: 'small', requestId: 'j1' });
    await bed.fleet.release(name, { instanceId: a, requestId: 'j1' });
    await sleep(1_100);
    await bed.fleet.refresh(name);
    await bed.fleet.plan(bed.spec(name));
    const history = await bed.temporal.workflow.getHandle(`fleet/${name}`).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, `fleet/${name}`);
  });
});
