/**
 * Attacks on what a runner host can read, and on a run's own size (issue 10): with scoped data
 * keys a runner reads only what is sent to its own pool and runner; a large run env travels to
 * runners once by reference, so a 1.4 MB env over 60 tasks no longer wedges the run.
 */
import { randomBytes } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { NativeConnection } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncryptionCodec, KeyRing, createDataConverter, newDataKey, payloadConverter } from '../../src/codec';
import { poolTaskQueue, runnerKeyScopes } from '../../src/ids';
import { startHarness, type Harness } from '../helpers/harness';
import { uniqueName } from '../helpers/temporal';

const control = new KeyRing([newDataKey()]);
const poolA = uniqueName('pool-a');
const poolB = uniqueName('pool-b');
const ringOf = (runner: string, pool: string) => new KeyRing(control.keysFor(runnerKeyScopes(runner, pool)));
const ra = uniqueName('ra');
const rb = uniqueName('rb');

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    keys: control,
    runners: [
      { name: ra, pool: poolA, keys: ringOf(ra, poolA) },
      { name: rb, pool: poolB, slots: 4, keys: ringOf(rb, poolB) },
    ],
  });
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

/** The input payloads of every ActivityTaskScheduled event of a run, still encoded. */
async function scheduledInputs(workflowId: string) {
  const { events } = await h.client.workflow.getHandle(workflowId).fetchHistory();
  return (events ?? [])
    .filter((e) => e.activityTaskScheduledEventAttributes)
    .map((e) => ({
      type: e.activityTaskScheduledEventAttributes?.activityType?.name ?? '',
      queue: e.activityTaskScheduledEventAttributes?.taskQueue?.name ?? '',
      payloads: (e.activityTaskScheduledEventAttributes?.input?.payloads ?? []) as temporal.api.common.v1.IPayload[],
    }));
}

describe('scoped data keys', () => {
  it("a runner of pool A reads nothing of a pool-B task, even from its own poll of pool B's queue", async () => {
    // The legitimate runner of pool B holds only its own scopes' keys, as sealed for it.
    const secret = `s3cret-${randomBytes(8).toString('hex')}`;
    const handle = await h.start({
      name: 'pool-b-only',
      env: { DEPLOY_TOKEN: secret },
      tasks: [{ name: 'b', pool: poolB, steps: ['test -n "$DEPLOY_TOKEN"'] }],
    });
    const done = await h.waitFor(handle, (s) => s.phase === 'finished');
    expect(done.tasks['b']?.status).toBe('success');

    const inputs = await scheduledInputs(handle.workflowId);
    const execute = inputs.find((i) => i.type === 'executeTask');
    const reserve = inputs.find((i) => i.type === 'reserveSlots');
    expect(execute && reserve).toBeTruthy();
    const raw = JSON.stringify(execute);
    expect(raw).not.toContain(secret);

    const attacker = new EncryptionCodec(ringOf(ra, poolA));
    const victim = new EncryptionCodec(ringOf(rb, poolB));
    for (const i of [execute!, reserve!]) {
      const payloads = i.payloads.map((p) => ({ metadata: p.metadata ?? {}, data: p.data ?? new Uint8Array() }));
      const tried = await attacker.decode(payloads).then(
        () => 'decoded',
        (err: Error) => err.message,
      );
      console.log(`pool-A runner decoding ${i.type} sent to ${i.queue}: ${tried}`);
      expect(tried).toMatch(new RegExp(`has no data key .*\\+(runner/${rb}|pool/${poolB})`));
      // The runner it was meant for reads it.
      const plain = payloadConverter.fromPayload<Record<string, unknown>>((await victim.decode(payloads))[0]!);
      expect(plain).toHaveProperty('runId', handle.workflowId);
    }
  });

  it("an impostor polling pool B's reservation queue with pool A's keys never sees a request", async () => {
    const connection = await NativeConnection.connect({ address: h.address });
    const seen: unknown[] = [];
    const impostor = await Worker.create({
      connection,
      namespace: 'default',
      taskQueue: poolTaskQueue(poolB),
      dataConverter: createDataConverter({ keys: ringOf(ra, poolA) }),
      activities: {
        async reserveSlots(req: unknown) {
          seen.push(req);
          return { runner: 'impostor', taskQueue: 'runner/impostor', leases: ['x'] };
        },
      },
    });
    // The legitimate runner is away: only the impostor polls pool B.
    await h.stopRunner(rb);
    const handle = await h.start(
      { name: 'impostor-bait', tasks: [{ name: 'b', pool: poolB, steps: ['true'] }] },
      { reservationTimeout: '3s' },
    );
    await impostor.runUntil(new Promise((r) => setTimeout(r, 8_000)));
    await connection.close();
    const s = await h.state(handle);
    console.log(
      `impostor with pool-A keys polled pool B for 8 s: requests it could read: ${seen.length}; task: ${s.tasks['b']?.status} (${s.tasks['b']?.reason})`,
    );
    expect(seen).toEqual([]);
    expect(s.tasks['b']?.status).toBe('pending');
    await h.startRunner({ name: rb, pool: poolB, slots: 4, keys: ringOf(rb, poolB) });
    const done = await h.waitFor(handle, (st) => st.phase === 'finished');
    expect(done.tasks['b']?.status).toBe('success');
  });
});

describe('a run env of 1.4 MB over 60 tasks', () => {
  it('completes, its env read once per runner instead of copied into every task', async () => {
    const env: Record<string, string> = {};
    for (let i = 0; i < 200; i++) env[`V${i}`] = randomBytes(3_500).toString('hex'); // 7,000 bytes each
    const tasks = Array.from({ length: 60 }, (_, i) => ({
      name: `t${i}`,
      pool: poolB,
      steps: ['test "${#V199}" -eq 7000 && test "${#V0}" -eq 7000'],
    }));
    const started = Date.now();
    const handle = await h.start({ name: 'big-env', env, tasks });
    const done = await h.waitFor(handle, (s) => s.phase === 'finished', 240_000);
    const { events } = await handle.fetchHistory();
    const historyBytes = temporal.api.history.v1.History.encode({ events }).finish().length;
    console.log(
      `big env: ${JSON.stringify(env).length} bytes of env, 60 tasks: ${done.result} in ${Date.now() - started} ms; ` +
        `history ${events?.length} events, ${historyBytes} bytes (33.8 MB and wedged before)`,
    );
    expect(done.result).toBe('success');
    // The start event holds the spec once (compressed); nothing else carries the env.
    expect(historyBytes).toBeLessThan(3 * 1024 * 1024);
  }, 300_000);
});
