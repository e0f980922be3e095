/**
 * A run takes the runner keys its control worker knows already when it starts (a local activity
 * in its first workflow task, workflows/runner-proofs.ts): a one-task run on a runner another run
 * met seconds ago needs no key lookup of its own, so three workflow tasks instead of four. And the
 * key so taken still refuses a reservation answered in that runner's name by another key. A real
 * `runfleet runner serve` process, registered with a token; the control worker enforces proofs.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { poolTaskQueue, runnerTaskQueue } from '../../src/ids';
import { generateSigningKey } from '../../src/security/operator';
import type { RunState } from '../../src/types';
import { startHarness, type Harness, type HarnessOptions } from '../helpers/harness';
import { killAll } from '../helpers/processes';
import { startRegisteredRunner, strangerSigner } from '../helpers/registered-runner';
import { until } from '../helpers/until';
import { stopRunSignal } from '../../workflows/run-messages';

const operator = generateSigningKey();
/** A control worker that enforces proofs, with runners admitted by `operator`. */
const startProofHarness = (extra: HarnessOptions) =>
  startHarness({ requireRunnerProofs: true, operatorPublicKey: operator.publicKey, ...extra });
let h: Harness;
beforeAll(async () => {
  // A minute, not 5 s: the second run must find the key the first one read, however slow CI is.
  h = await startProofHarness({ runnerKeyCacheMs: 60_000 });
});
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  await h?.stop();
});

const startRunner = () => startRegisteredRunner(h, operator.seed, { runner: 'prefetched', pool: 'prefetch-pool' });

/** What a run's history shows of how it learned its runner's key. */
async function shape(handle: WorkflowHandle) {
  const { events } = await handle.fetchHistory();
  const list = events ?? [];
  const scheduled = list
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
    .filter((n): n is string => typeof n === 'string');
  return {
    workflowTasks: list.filter((e) => e.workflowTaskCompletedEventAttributes).length,
    activities: scheduled,
    localActivityMarkers: list.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')
      .length,
    events: list.length,
  };
}

const oneTask = (pool: string, name: string) => ({
  name,
  group: '/test/key-prefetch',
  tasks: [{ name: 'build', steps: ['true'], pool }],
});

describe('runner keys taken from the control worker when a run starts', () => {
  it('a run after another on the same pool needs no key lookup of its own: three workflow tasks', async () => {
    const r = await startRunner();
    const first = await h.start(oneTask(r.pool, 'first'));
    const firstState = (await first.result()) as RunState;
    const second = await h.start(oneTask(r.pool, 'second'));
    const secondState = (await second.result()) as RunState;
    const [a, b] = [await shape(first), await shape(second)];
    console.log(`first run (met the runner first): ${JSON.stringify(a)}`);
    console.log(`second run (the key known at its start): ${JSON.stringify(b)}`);
    expect(firstState.result).toBe('success');
    expect(secondState.result).toBe('success');
    expect(a.activities).toEqual(['reserveSlots', 'runnerSigningKeys', 'executeTask']);
    expect(b.activities).toEqual(['reserveSlots', 'executeTask']);
    expect(b.localActivityMarkers).toBe(1);
    expect(b.workflowTasks).toBe(3);
    expect(a.workflowTasks).toBe(4);
  });

  it("a key so taken still refuses a reservation answered in that runner's name with another key", async () => {
    const r = await startRunner();
    const first = await h.start(oneTask(r.pool, 'meets-the-runner'));
    expect(((await first.result()) as RunState).result).toBe('success');
    r.proc.kill('SIGTERM');
    await r.proc.exited;
    const attacker = strangerSigner();
    const connection = await NativeConnection.connect({ address: h.address });
    let answered = 0;
    const impostor = await Worker.create({
      connection,
      namespace: 'default',
      taskQueue: poolTaskQueue(r.pool),
      activities: {
        reserveSlots: async (req: { runId: string; nonce?: string }) => {
          answered++;
          const answer = { runner: r.name, taskQueue: runnerTaskQueue(r.name), leases: ['forged-lease'] };
          const nonce = req.nonce ?? '';
          const proof = attacker.sign({ about: 'reservation', run: req.runId, nonce, ...answer });
          // Names its own key as the signer: the codec finds the proof good, and the run must
          // still refuse it, since the key it took from the control worker is the runner's.
          return {
            ...answer,
            proof,
            said: { about: 'reservation', run: req.runId, nonce, signer: attacker.publicKey },
          };
        },
      },
      shutdownGraceTime: 1_000,
    });
    const running = impostor.run();
    const handle = await h.start(oneTask(r.pool, 'attacked'));
    let refused: RunState;
    try {
      refused = await h.waitFor(handle, (s) => (s.refusals ?? []).length >= 1, 60_000);
    } finally {
      impostor.shutdown();
      await running;
      await connection.close();
    }
    const seen = await shape(handle);
    console.log(
      `tried: an impostor answered reserveSlots ${answered} time(s) as runner "${r.name}", signed by its own key`,
    );
    console.log(
      `happened: ${refused.refusals?.[0]?.message}; build is ${refused.tasks.build?.status}; ${JSON.stringify(seen)}`,
    );
    // The key came from the control worker's memory, not from a lookup of this run's.
    expect(seen.localActivityMarkers).toBe(1);
    expect(seen.activities).not.toContain('runnerSigningKeys');
    expect(refused.refusals?.[0]?.message).toBe(
      `refused: reservation answer for runner "${r.name}" not signed by "${r.name}" (the proof does not match its signing key)`,
    );
    expect(refused.tasks.build?.status).toBe('pending');
    expect(refused.tasks.build?.attempts).toBe(0);
    await handle.terminate('test over');
  });
});

describe("a runner's key read is shared by what waits for it", () => {
  let slow: Harness;
  beforeAll(async () => {
    // Every registry read of a key takes 4 s: a run is stopped while its one read is under way.
    slow = await startProofHarness({ runnerKeyReadDelayMs: 4_000 });
  });
  afterAll(async () => {
    await killAll();
    await slow?.stop();
  });

  it('a run stopped while it reads a runner key neither refuses the runner nor waits for the read', async () => {
    const v = await startRegisteredRunner(slow, operator.seed, { runner: 'slow-key', pool: 'slow-key-pool' });
    const handle = await slow.start({
      name: 'stopped-while-reading',
      group: '/test/key-prefetch',
      tasks: [{ name: 'build', steps: ['sleep 5'], pool: v.pool }],
    });
    // The runner answered the reservation, and the run is reading its key (4 s).
    await until(
      'the run reads the runner key',
      async () => (await shape(handle)).activities.includes('runnerSigningKeys'),
      { timeoutMs: 60_000, everyMs: 50 },
    );
    const stoppedAt = Date.now();
    await handle.signal(stopRunSignal, { reason: 'test: stopped while reading a key', by: 'test' });
    const done = await slow.waitFor(handle, (s) => s.finishedAt !== null, 60_000);
    const tookMs = Date.now() - stoppedAt;
    console.log(
      `happened: stopped ${tookMs} ms after the signal; build ${done.tasks.build?.status}; refusals ${JSON.stringify(done.refusals ?? [])}`,
    );
    // Before, the stop cancelled the read, and the answer waiting for it was refused:
    // "refused: reservation answer ... not checked (its signing key could not be read ...)".
    expect(done.refusals ?? []).toEqual([]);
    expect(done.result).toBe('stopped');
    expect(done.tasks.build!.status).toBe('cancelled');
    // The stop did not wait for the read (4 s).
    expect(tookMs).toBeLessThan(4_000);
  });
});
