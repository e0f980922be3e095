/** The EC2 activities against a scripted client: bounds, batching, errors, idempotence. */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { createEc2Activities, toEc2 } from '../../activities/ec2';
import { desiredTemplate } from '../../src/fleet/plan';
import { instanceToken, tokenHash } from '../../src/fleet/token';
import { validateFleetSpec } from '../../src/fleet/validate';

const log = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

type Handler = (name: string, input: Record<string, unknown>) => Promise<unknown>;

function fakeEc2(handler: Handler): { ec2: EC2Client; sent: string[] } {
  const sent: string[] = [];
  const ec2 = {
    send: (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name.replace(/Command$/, '');
      sent.push(name);
      return handler(name, command.input);
    },
  } as unknown as EC2Client;
  return { ec2, sent };
}

function awsError(code: string, message = code): Error {
  return Object.assign(new Error(message), { name: code, Code: code });
}

const spec = validateFleetSpec({
  name: 'ci',
  launchTemplate: { ami: 'ami-1', userData: 'runfleet runner serve {{token}}', securityGroups: ['sg-1'] },
  resourceClasses: [{ name: 'small', instanceType: 't3.large', maxInstances: 5 }],
  subnets: ['subnet-1'],
});
const data = desiredTemplate(spec, spec.resourceClasses[0] as never);

describe('EC2 activities', () => {
  it('keeps at most maxInFlight calls in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    const { ec2 } = fakeEc2(async (_name, input) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      const ids = input['InstanceIds'] as string[];
      return {
        TerminatingInstances: ids.map((InstanceId) => ({ InstanceId, CurrentState: { Name: 'shutting-down' } })),
      };
    });
    const a = createEc2Activities({ ec2, log, maxInFlight: 3, tokenSecret: 'x'.repeat(16) });
    const ids = Array.from({ length: 2_000 }, (_, i) => `i-${i}`);
    const r = await a.terminateInstances({ instanceIds: ids });
    expect(r.confirmed).toHaveLength(2_000);
    expect(r.calls.mutating).toBe(10); // batches of 200
    expect(peak).toBe(3);
  });

  it('finds the unknown ids of a batch one by one (NotFound fails the whole batch)', async () => {
    const { ec2 } = fakeEc2(async (_name, input) => {
      const ids = input['InstanceIds'] as string[];
      if (ids.includes('i-gone')) throw awsError('InvalidInstanceID.NotFound');
      return {
        TerminatingInstances: ids.map((InstanceId) => ({
          InstanceId,
          CurrentState: { Name: InstanceId === 'i-slow' ? 'running' : 'terminated' },
        })),
      };
    });
    const a = createEc2Activities({ ec2, log, tokenSecret: 'x'.repeat(16) });
    const r = await a.terminateInstances({ instanceIds: ['i-1', 'i-gone', 'i-slow'] });
    expect(r.confirmed).toEqual(['i-1']);
    expect(r.notFound).toEqual(['i-gone']);
    expect(r.pending).toEqual(['i-slow']);
  });

  it('turns a desired-state mistake into a non-retryable InvalidConfig; throttling stays retryable', async () => {
    const bad = createEc2Activities({
      ec2: fakeEc2(async () => Promise.reject(awsError('InvalidAMIID.NotFound'))).ec2,
      log,
      tokenSecret: 'x'.repeat(16),
    });
    const err = await bad.terminateInstances({ instanceIds: ['i-1'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('InvalidConfig');
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    const busy = createEc2Activities({
      ec2: fakeEc2(async () => Promise.reject(awsError('RequestLimitExceeded'))).ec2,
      log,
      tokenSecret: 'x'.repeat(16),
    });
    const e2 = await busy.terminateInstances({ instanceIds: ['i-1'] }).catch((e: unknown) => e);
    expect(e2).not.toBeInstanceOf(ApplicationFailure); // Temporal retries it with backoff
  });

  it('ensureLaunchTemplate decides from what EC2 says now: a retry adds no second version', async () => {
    const old = { ...toEc2({ ...data, imageId: 'ami-0' }), UserData: Buffer.from(data.userData).toString('base64') };
    const want = toEc2(data);
    const run = async (versions: unknown[]) => {
      const { ec2, sent } = fakeEc2(async (name) => {
        if (name === 'DescribeLaunchTemplates') return { LaunchTemplates: [{ LaunchTemplateId: 'lt-1' }] };
        if (name === 'DescribeLaunchTemplateVersions') return { LaunchTemplateVersions: versions };
        if (name === 'CreateLaunchTemplateVersion') return { LaunchTemplateVersion: { VersionNumber: 2 } };
        return {};
      });
      const r = await createEc2Activities({ ec2, log, tokenSecret: 'x'.repeat(16) }).ensureLaunchTemplate({
        name: 'runfleet-ci-small',
        fleet: 'ci',
        data,
      });
      return { r, sent };
    };
    const fresh = await run([{ VersionNumber: 1, DefaultVersion: true, LaunchTemplateData: old }]);
    expect(fresh.r.action).toBe('new-version');
    expect(fresh.sent.filter((n) => !n.startsWith('Describe'))).toEqual([
      'CreateLaunchTemplateVersion',
      'ModifyLaunchTemplate',
    ]);
    const retried = await run([
      { VersionNumber: 1, DefaultVersion: true, LaunchTemplateData: old },
      { VersionNumber: 2, DefaultVersion: false, LaunchTemplateData: want },
    ]);
    expect(retried.r).toMatchObject({ action: 'made-default', defaultVersion: 2 });
    expect(retried.sent.filter((n) => !n.startsWith('Describe'))).toEqual(['ModifyLaunchTemplate']);
    const done = await run([{ VersionNumber: 2, DefaultVersion: true, LaunchTemplateData: want }]);
    expect(done.r.action).toBe('unchanged');
    expect(done.sent.every((n) => n.startsWith('Describe'))).toBe(true);
  });

  it('puts the token into the user data at launch, never into the template', async () => {
    let userData = '';
    const { ec2 } = fakeEc2(async (name, input) => {
      if (name === 'DescribeLaunchTemplateVersions')
        return { LaunchTemplateVersions: [{ LaunchTemplateData: toEc2(data) }] };
      userData = Buffer.from(input['UserData'] as string, 'base64').toString('utf8');
      return { Instances: [{ InstanceId: 'i-1', LaunchTime: new Date(0) }] };
    });
    const a = createEc2Activities({ ec2, log, tokenSecret: 'x'.repeat(16) });
    const r = await a.launchInstances({
      fleet: 'ci',
      resourceClass: 'small',
      template: 'runfleet-ci-small',
      count: 1,
      subnet: 'subnet-1',
      tokenId: 't1',
      clientToken: 'c',
      tags: {},
    });
    const own = instanceToken('x'.repeat(16), 'ci', 't1', 'c', 0);
    expect(userData).toBe(`runfleet runner serve ${own.token}`);
    expect(r.instances).toEqual([
      { instanceId: 'i-1', launchTime: new Date(0).toISOString(), token: { id: own.id, hash: own.hash } },
    ]);
    expect(data.userData).toContain('{{token}}');
  });

  it('gives every instance of a launch a token of its own; a retry derives the same ones', async () => {
    const launch = async () => {
      const runs: { clientToken: string; token: string; min: number; max: number }[] = [];
      const { ec2 } = fakeEc2(async (name, input) => {
        if (name === 'DescribeLaunchTemplateVersions')
          return { LaunchTemplateVersions: [{ LaunchTemplateData: toEc2(data) }] };
        const script = Buffer.from(input['UserData'] as string, 'base64').toString('utf8');
        runs.push({
          clientToken: input['ClientToken'] as string,
          token: script.replace('runfleet runner serve ', ''),
          min: input['MinCount'] as number,
          max: input['MaxCount'] as number,
        });
        return { Instances: [{ InstanceId: `i-${runs.length}`, LaunchTime: new Date(0) }] };
      });
      const r = await createEc2Activities({ ec2, log, tokenSecret: 'x'.repeat(16) }).launchInstances({
        fleet: 'ci',
        resourceClass: 'small',
        template: 'runfleet-ci-small',
        count: 3,
        subnet: 'subnet-1',
        tokenId: 't1',
        clientToken: 'launch-1',
        tags: {},
      });
      return { r, runs };
    };
    const { r, runs } = await launch();
    expect(runs).toHaveLength(3); // one RunInstances per instance: user data is per call
    expect(runs.every((x) => x.min === 1 && x.max === 1)).toBe(true);
    expect(runs.map((x) => x.clientToken).sort()).toEqual(['launch-1-0', 'launch-1-1', 'launch-1-2']);
    expect(new Set(runs.map((x) => x.token)).size).toBe(3);
    // Each instance is reported with the hash of the token in its own user data.
    for (const i of r.instances) {
      const run = runs[Number(i.instanceId.slice(2)) - 1];
      expect(i.token?.hash).toBe(tokenHash(run?.token ?? ''));
    }
    const again = await launch();
    expect(again.runs.map((x) => `${x.clientToken} ${x.token}`).sort()).toEqual(
      runs.map((x) => `${x.clientToken} ${x.token}`).sort(),
    );
  });

  it('keeps the instances a partly failed launch started, and fails when none started', async () => {
    const go = (fail: (n: number) => boolean) => {
      let n = 0;
      const { ec2 } = fakeEc2(async (name) => {
        if (name === 'DescribeLaunchTemplateVersions')
          return { LaunchTemplateVersions: [{ LaunchTemplateData: toEc2(data) }] };
        n++;
        if (fail(n)) throw awsError('InsufficientInstanceCapacity');
        return { Instances: [{ InstanceId: `i-${n}`, LaunchTime: new Date(0) }] };
      });
      return createEc2Activities({ ec2, log, tokenSecret: 'x'.repeat(16) }).launchInstances({
        fleet: 'ci',
        resourceClass: 'small',
        template: 'runfleet-ci-small',
        count: 3,
        subnet: 'subnet-1',
        tokenId: 't1',
        clientToken: 'c',
        tags: {},
      });
    };
    const some = await go((n) => n === 2);
    expect(some.instances.map((i) => i.instanceId).sort()).toEqual(['i-1', 'i-3']);
    await expect(go(() => true)).rejects.toMatchObject({ name: 'InsufficientInstanceCapacity' });
  });
});
