/**
 * Claim against terminate on the same instance, many times, on the real dev server and moto:
 * an idle instance past its idle time is both claimable (within its lifetime) and a candidate for
 * maintenance. A provision and a refresh are sent together; exactly one may win. A claimed
 * instance is never terminated, and a task never starts on a terminated one.
 */
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunfleetError } from '../../src/errors';
import { startFleetTestbed, type FleetTestbed } from '../helpers/fleet-testbed';
import type { ProvisionResult, RefreshResult } from '../../workflows/fleet';
import { workflowBundle } from '../helpers/harness';
import { temporalAddress } from '../helpers/temporal';
import { until } from '../helpers/until';

/** Bounded: each iteration is a refresh, a provision and EC2 calls on a 2-core machine. */
const ITERATIONS = 40;

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function ec2State(id: string): Promise<string | undefined> {
  const out = await bed.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  return out.Reservations?.[0]?.Instances?.[0]?.State?.Name;
}

describe('claim against terminate', () => {
  it(`exactly one wins, ${ITERATIONS} times`, async () => {
    const name = bed.uniqueFleet('race');
    await bed.fleet.apply(bed.spec(name, { maxIdleTime: '200ms', maxLifetime: '1h', registrationTimeout: '1h' }));
    /** One idle instance: launched by a provision whose runner registers meanwhile, then released. */
    async function idleInstance(i: number): Promise<string> {
      const requestId = `setup-${i}`;
      const provision = bed.fleet.provision(name, { resourceClass: 'small', requestId, waitMs: 30_000 });
      const instanceId = await until(
        'the provision to launch an instance',
        async () => (await bed.fleet.status(name)).records.find((r) => r.claimedBy === requestId)?.instanceId,
        { timeoutMs: 10_000, everyMs: 20 },
      );
      await bed.registerInstance(name, instanceId);
      const got = await provision;
      expect(got).toMatchObject({ instanceId, launched: true });
      await bed.fleet.release(name, { instanceId, requestId });
      return instanceId;
    }

    let claims = 0;
    let terminations = 0;
    let idle: string | null = null;
    for (let i = 0; i < ITERATIONS; i++) {
      idle ??= await idleInstance(i);
      await sleep(250); // past maxIdleTime: expired for maintenance, still claimable
      const requestId = `job-${i}`;
      const claim = () => bed.fleet.provision(name, { resourceClass: 'small', requestId, launch: false });
      const refresh = () => bed.fleet.refresh(name);
      // Vary who is sent first and by how much: a refresh reads EC2 before it marks, so a claim
      // sent up to ~100 ms after it can still land in between (and must then win).
      const gap = i % 2 === 0 ? (i * 7) % 25 : (i * 37) % 200;
      const [c, r] =
        i % 2 === 0
          ? await Promise.allSettled([claim(), sleep(gap).then(refresh)])
          : await Promise.allSettled([sleep(gap).then(claim), refresh()]);
      expect(r.status).toBe('fulfilled');
      const refreshed = (r as PromiseFulfilledResult<RefreshResult>).value;
      const record = (await bed.fleet.status(name)).records.find((x) => x.instanceId === idle);
      const state = await ec2State(idle);
      if (c.status === 'fulfilled') {
        // The claim won: the instance is claimed, running, and maintenance did not touch it.
        claims++;
        const got = (c as PromiseFulfilledResult<ProvisionResult>).value;
        expect(got.instanceId).toBe(idle);
        expect(refreshed.markedTerminated).toBe(0);
        expect(record?.state).toBe('claimed');
        expect(state).toBe('running');
        // A task may start on it.
        await bed.temporal.workflow
          .getHandle(`fleet/${name}`)
          .executeUpdate('startTask', { args: [{ instanceId: idle, requestId }] });
        await bed.fleet.release(name, { instanceId: idle, requestId });
      } else {
        // The termination won: the claim was refused, the instance is gone, nothing runs on it.
        terminations++;
        expect(c.reason).toBeInstanceOf(RunfleetError);
        expect((c.reason as RunfleetError).code).toBe('InvalidState');
        expect(refreshed.markedTerminated).toBe(1);
        expect(refreshed.confirmedTerminated).toBe(1);
        expect(record).toBeUndefined();
        expect(['shutting-down', 'terminated']).toContain(state);
        const late = await bed.temporal.workflow
          .getHandle(`fleet/${name}`)
          .executeUpdate('startTask', { args: [{ instanceId: idle, requestId }] })
          .catch((e: unknown) => e);
        expect((late as { cause?: { type?: string } }).cause?.type).toBe('NotFound');
        idle = null;
      }
    }
    // Both outcomes happened: the test raced, it did not always run in one order.
    expect(claims + terminations).toBe(ITERATIONS);
    expect(claims).toBeGreaterThan(0);
    expect(terminations).toBeGreaterThan(0);
  });
});
