/**
 * Runner identity on what runners say (issue 10): every reservation answer, execution result,
 * lookup answer and task report carries a proof by the runner's identity signing key, which the
 * run checks against the key in the runner's registry record. Here someone with namespace access
 * but without the runner's key attacks a run: a report in another runner's name, a lookup answer
 * from an impostor polling the runner's queue, an execution completed by an impostor that polled
 * it (its result naming the victim's key and stamped with the proof codec's "checked" mark). Each is refused, shown as refused, and not applied. Runners are real `runfleet runner serve`
 * processes, registered with a token; the control worker enforces proofs (its production default).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, type PayloadCodec } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPoolActivities } from '../../activities/pool';
import type { ExecuteRequest, ExecutionResult, TaskLookup } from '../../activities/types';
import { PAYLOAD_CONVERTER_PATH, PROOF_CHECKED_METADATA } from '../../src/codec';
import { WORKFLOW_TYPES, poolTaskQueue, runnerTaskQueue, runnerWorkflowId } from '../../src/ids';
import { SlotPool } from '../../src/runner/slots';
import { createRunnerSigner } from '../../src/security/runner-signer';
import type { RunState, TaskOutcome } from '../../src/types';
import { taskReportSignal, type TaskReport } from '../../workflows/run-messages';
import { admissionQuery, recordQuery } from '../../workflows/runner-messages';
import { startHarness, type Harness } from '../helpers/harness';
import { generateSigningKey } from '../../src/security/operator';
import { killAll, startRunnerProcess } from '../helpers/processes';
import { startRegisteredRunner, strangerSigner } from '../helpers/registered-runner';
import { uniqueName } from '../helpers/temporal';
import { sharedFile } from '../helpers/shared-files';
import { until } from '../helpers/until';

/** The operator: only runners it admits register (and get a signing key into the registry). */
const operator = generateSigningKey();
/** Runner processes here run without data keys, as the harness does. */
const PLAINTEXT = { RUNFLEET_ALLOW_PLAINTEXT: '1' };

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ requireRunnerProofs: true, operatorPublicKey: operator.publicKey });
});
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  await h?.stop();
});

/** The attacker's own Ed25519 key: valid, but not the victim's. */
const attacker = strangerSigner();

const success = (): TaskOutcome => {
  const at = new Date().toISOString();
  return { exitCode: 0, failedStep: null, startedAt: at, finishedAt: at };
};

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

/** A registered runner process (token, then its identity and signing key in the registry). */
const startVictim = () => startRegisteredRunner(h, operator.seed, { runner: 'victim', pool: 'id-pool' });

const refusalsOf = (s: RunState) => s.refusals ?? [];

describe('runner identity: what runners say is signed, and forgeries are refused', () => {
  it("refuses a task report sent in another runner's name, shows it as refused, and does not apply it", async () => {
    const v = await startVictim();
    const handle = await h.start({
      name: 'forged-report',
      group: '/test/security-identity',
      tasks: [{ name: 'build', steps: ['sleep 5', 'exit 3'], pool: v.pool }],
    });
    await h.waitFor(handle, (s) => s.tasks.build?.status === 'running', 60_000);

    // The attacker says the victim's task succeeded: once signed with its own key, once unsigned.
    const forged: Omit<TaskReport, 'proof'> = {
      task: 'build',
      attempt: 1,
      runner: v.name,
      outcome: success(),
      note: 'forged',
    };
    const proof = attacker.sign({ about: 'report', run: handle.workflowId, ...forged, note: 'forged' });
    await handle.signal(taskReportSignal, { ...forged, proof });
    await handle.signal(taskReportSignal, forged);
    console.log(
      `tried: two taskReport signals in runner "${v.name}"'s name saying "build" succeeded (one signed by another key, one unsigned)`,
    );

    const refused = await h.waitFor(handle, (s) => refusalsOf(s).length >= 2, 30_000);
    console.log(
      `happened: refusals ${JSON.stringify(refusalsOf(refused).map((r) => r.message))}; build is ${refused.tasks.build?.status}`,
    );
    expect(refusalsOf(refused).map((r) => r.message)).toEqual([
      `refused: report for runner "${v.name}" not signed by "${v.name}" (the proof does not match its signing key)`,
      `refused: report for runner "${v.name}" not signed by "${v.name}" (no proof)`,
    ]);
    expect(refused.tasks.build!.status).toBe('running');

    // The task ends as it really does: exit 3, not the forged success.
    const done = await h.waitFor(handle, (s) => s.phase === 'finished', 60_000);
    console.log(
      `happened: the run finished ${done.result}; build ${done.tasks.build?.status} with exit code ${done.tasks.build?.exitCode}`,
    );
    expect(done.tasks.build!.status).toBe('failed');
    expect(done.tasks.build!.exitCode).toBe(3);
  });

  it("refuses a lookup answer from an impostor polling the runner's queue; the runner's own signed report settles the task", async () => {
    const v = await startVictim();
    // Made beforehand, 0666: a second run under another task user would append, not fail to.
    const counter = sharedFile(h.dataDir, `${v.name}.count`);
    const handle = await h.start(
      {
        name: 'impostor-lookup',
        group: '/test/security-identity',
        tasks: [{ name: 'deploy', steps: [`echo ran >> ${counter}`, 'sleep 12', 'exit 0'], pool: v.pool }],
      },
      { heartbeatTimeout: '3s' },
    );
    await h.waitFor(handle, (s) => s.tasks.deploy?.status === 'running' && lines(counter).length === 1, 60_000);
    v.proc.kill('SIGKILL');
    await v.proc.exited;

    // The impostor polls the victim's own queue and answers the run's question about the lost task.
    const connection = await NativeConnection.connect({ address: h.address });
    let asked = 0;
    const impostor = await Worker.create({
      connection,
      namespace: 'default',
      taskQueue: runnerTaskQueue(v.name),
      activities: {
        lookupTask: async (req: { runId: string; task: string; attempt: number }): Promise<TaskLookup> => {
          asked++;
          const outcome = success();
          const proof = attacker.sign({
            about: 'lookup',
            ...{ run: req.runId, task: req.task, attempt: req.attempt },
            runner: v.name,
            known: true,
            outcome,
          });
          return { known: true, outcome, proof };
        },
      },
      shutdownGraceTime: 1_000,
    });
    const impostorDone = impostor.run();
    try {
      const refused = await h.waitFor(handle, (s) => refusalsOf(s).length >= 1, 60_000);
      console.log(
        `tried: an impostor polling ${runnerTaskQueue(v.name)} answered lookupTask (${asked} time(s)): "deploy" ended with exit code 0`,
      );
      console.log(
        `happened: ${refusalsOf(refused)[0]?.message}; deploy is ${refused.tasks.deploy?.status} (${refused.tasks.deploy?.reason})`,
      );
      expect(refusalsOf(refused)[0]!.message).toBe(
        `refused: lookup answer for runner "${v.name}" not signed by "${v.name}" (the proof does not match its signing key)`,
      );
      expect(refused.tasks.deploy!.status).toBe('lost');
      expect(refused.tasks.deploy!.reason).toContain('refused: lookup answer');
    } finally {
      impostor.shutdown();
      await impostorDone;
      await connection.close();
    }

    // The real runner comes back, finds its task and reports it, signed: that report is applied.
    const back = startRunnerProcess({ address: h.address, name: v.name, pool: v.pool, dataDir: v.dir, env: PLAINTEXT });
    const done = await h.waitFor(handle, (s) => s.phase === 'finished', 90_000);
    console.log(
      `happened: the victim came back and reported; deploy ${done.tasks.deploy?.status}: ${done.tasks.deploy?.reason}`,
    );
    expect(done.tasks.deploy!.status).toBe('success');
    expect(done.tasks.deploy!.reason).toContain(`runner "${v.name}" reported it`);
    expect(lines(counter)).toEqual(['ran']);
    back.kill();
  });

  it("refuses a reservation answered in another runner's name: its leases are not used", async () => {
    const v = await startVictim();
    v.proc.kill('SIGTERM');
    await v.proc.exited;
    const connection = await NativeConnection.connect({ address: h.address });
    let answered = 0;
    const impostor = await Worker.create({
      connection,
      namespace: 'default',
      taskQueue: poolTaskQueue(v.pool),
      activities: {
        reserveSlots: async (req: { runId: string; nonce?: string }) => {
          answered++;
          const answer = { runner: v.name, taskQueue: runnerTaskQueue(v.name), leases: ['forged-lease'] };
          const proof = attacker.sign({ about: 'reservation', run: req.runId, nonce: req.nonce ?? '', ...answer });
          return { ...answer, proof };
        },
      },
      shutdownGraceTime: 1_000,
    });
    const running = impostor.run();
    const handle = await h.start({
      name: 'impostor-reservation',
      group: '/test/security-identity',
      tasks: [{ name: 'deploy', steps: ['true'], pool: v.pool }],
    });
    let refused: RunState;
    try {
      refused = await h.waitFor(handle, (s) => refusalsOf(s).length >= 1, 60_000);
    } finally {
      impostor.shutdown();
      await running;
      await connection.close();
    }
    console.log(
      `tried: an impostor polling ${poolTaskQueue(v.pool)} answered reserveSlots ${answered} time(s) as runner "${v.name}"`,
    );
    console.log(
      `happened: ${refusalsOf(refused)[0]?.message}; deploy is ${refused.tasks.deploy?.status} after ${refused.tasks.deploy?.attempts} attempt(s) (${refused.tasks.deploy?.reason})`,
    );
    expect(refusalsOf(refused)[0]!.message).toBe(
      `refused: reservation answer for runner "${v.name}" not signed by "${v.name}" (the proof does not match its signing key)`,
    );
    expect(refused.tasks.deploy!.status).toBe('pending');
    expect(refused.tasks.deploy!.attempts).toBe(0);
    await handle.terminate('test over');
  });

  it("refuses a registered runner of another pool answering this pool's reservation with its own valid proof: it never gets the task", async () => {
    // A real runner, admitted by the operator to its own pool; its host turns hostile: it keeps
    // its identity key and answers another pool's reservations (it need not read them: a run's
    // nonces are not secret), naming itself and its own queue, where that pool's task would come
    // sealed for it.
    const evil = await startVictim();
    evil.proc.kill('SIGTERM');
    await evil.proc.exited;
    const identity = JSON.parse(readFileSync(join(evil.dir, 'identity.json'), 'utf8')) as { signingSeed: string };
    const signer = createRunnerSigner(identity.signingSeed);
    const otherPool = uniqueName('other-pool');
    const connection = await NativeConnection.connect({ address: h.address });
    let answered = 0;
    let executions = 0;
    const grants = createPoolActivities({
      runner: evil.name,
      taskQueue: runnerTaskQueue(evil.name),
      slots: new SlotPool(4, { evictionMs: 30_000, lingerMs: 2_000 }),
      signer,
    });
    const answering = await Worker.create({
      connection,
      namespace: 'default',
      taskQueue: poolTaskQueue(otherPool),
      activities: {
        reserveSlots: (req: Parameters<typeof grants.reserveSlots>[0]) => {
          answered++;
          return grants.reserveSlots(req);
        },
      },
      shutdownGraceTime: 1_000,
    });
    const receiving = await Worker.create({
      connection,
      namespace: 'default',
      taskQueue: runnerTaskQueue(evil.name),
      activities: {
        executeTask: async () => {
          executions++;
          throw new Error('the hostile runner was sent a task of another pool');
        },
      },
      shutdownGraceTime: 1_000,
    });
    const running = [answering.run(), receiving.run()];
    const handle = await h.start({
      name: 'cross-pool-reservation',
      group: '/test/security-identity',
      tasks: [{ name: 'deploy', steps: ['true'], pool: otherPool }],
    });
    let refused: RunState;
    try {
      refused = await h.waitFor(handle, (s) => refusalsOf(s).length >= 1, 60_000);
      // Long enough for an execution the run would have sent to arrive.
      await new Promise((r) => setTimeout(r, 2_000));
    } finally {
      answering.shutdown();
      receiving.shutdown();
      await Promise.all(running);
      await connection.close();
    }
    console.log(
      `tried: runner "${evil.name}" (pool "${evil.pool}") answered reserveSlots of pool "${otherPool}" ${answered} time(s), signed with its own registered key`,
    );
    console.log(
      `happened: ${refusalsOf(refused)[0]?.message}; deploy is ${refused.tasks.deploy?.status} after ${refused.tasks.deploy?.attempts} attempt(s); executions sent to it: ${executions}`,
    );
    expect(answered).toBeGreaterThanOrEqual(1);
    expect(refusalsOf(refused)[0]!.message).toBe(
      `refused: reservation answer of pool "${otherPool}" from runner "${evil.name}", which the operator admitted to pool "${evil.pool}"`,
    );
    expect(refused.tasks.deploy!.status).toBe('pending');
    expect(refused.tasks.deploy!.attempts).toBe(0);
    expect(executions).toBe(0);
    await handle.terminate('test over');
  });

  it("refuses a runner's registry workflow started again with a record of another pool and its real admission: it never gets that pool's runs_on tasks", async () => {
    // Anyone with namespace access can terminate `runner/<name>` and start it again. Here the
    // start carries a record of another pool and the runner's real admission (the operator-signed
    // grant for its own pool), copied from its query. runs_on picks runners from these records.
    const role = uniqueName('role');
    const evil = await startRegisteredRunner(h, operator.seed, { runner: 'evil', pool: 'id-pool', labels: { role } });
    const otherPool = uniqueName('other-pool');
    const registry = h.client.workflow.getHandle(runnerWorkflowId(evil.name));
    await until('the runner is ready', async () => (await registry.query(recordQuery)).status === 'ready', {
      timeoutMs: 60_000,
    });
    const record = await registry.query(recordQuery);
    const admission = await registry.query(admissionQuery);
    expect(admission?.grant.pool).toBe(evil.pool);
    await registry.terminate('test: started again in another pool');
    const forged = await h.client.workflow.start(WORKFLOW_TYPES.runner, {
      workflowId: runnerWorkflowId(evil.name),
      taskQueue: h.controlQueue,
      args: [
        {
          name: evil.name,
          pool: otherPool,
          resume: { record: { ...record, pool: otherPool }, admission, grant: null, nonces: [], generation: 1 },
        },
      ],
    });
    const refusal = await forged.result().then(
      () => null,
      (e: unknown) => (e instanceof WorkflowFailedError ? e.cause : e),
    );
    console.log(
      `tried: runner/${evil.name} started again with a record of pool "${otherPool}" and its real admission to pool "${evil.pool}"`,
    );
    console.log(`happened: ${String(refusal)}`);
    expect(refusal).toBeInstanceOf(ApplicationFailure);
    expect((refusal as ApplicationFailure).type).toBe('InvalidWorkflowInput');
    expect((refusal as ApplicationFailure).message).toBe(
      "invalid resume: it is set by the runner's registry workflow itself when it continues as new, never by a start",
    );

    const handle = await h.start({
      name: 'forged-record-pool',
      group: '/test/security-identity',
      tasks: [{ name: 'deploy', steps: ['true'], pool: otherPool, runs_on: { role } }],
    });
    const waiting = await h.waitFor(
      handle,
      (s) => s.phase === 'finished' || (s.tasks.deploy?.reason ?? '').includes('no runner'),
      60_000,
    );
    console.log(
      `happened: a run of pool "${otherPool}" asking for runs_on role=${role}: deploy is ${waiting.tasks.deploy?.status} on ${waiting.tasks.deploy?.runner ?? 'no runner'}: ${waiting.tasks.deploy?.reason}`,
    );
    expect(waiting.tasks.deploy!.status).toBe('pending');
    expect(waiting.tasks.deploy!.runner).toBeNull();
    expect(waiting.tasks.deploy!.reason).toContain(`pool "${otherPool}" has no registered runner`);
    await handle.terminate('test over');
  });

  it("refuses an execution completed by an impostor that polled the runner's queue: the attempt is lost, never a success, and runs once", async () => {
    const v = await startVictim();
    // Stopped, so only the stand-ins below poll its queues; its registry record keeps its key.
    v.proc.kill('SIGTERM');
    await v.proc.exited;
    const identity = JSON.parse(readFileSync(join(v.dir, 'identity.json'), 'utf8')) as {
      signingSeed: string;
      signingKey: string;
    };
    const victimKey = identity.signingKey;
    // Made beforehand, 0666: a second run under another task user would append, not fail to.
    const counter = sharedFile(h.dataDir, `${v.name}.count`);

    // The victim's reservation answers, signed with its key (as its own pool worker signs them),
    // and an impostor on its own queue that takes the execution and says it succeeded.
    const connection = await NativeConnection.connect({ address: h.address });
    const slots = new SlotPool(1, { evictionMs: 30_000, lingerMs: 2_000 });
    const reserving = await Worker.create({
      connection,
      namespace: 'default',
      taskQueue: poolTaskQueue(v.pool),
      activities: createPoolActivities({
        runner: v.name,
        taskQueue: runnerTaskQueue(v.name),
        slots,
        signer: createRunnerSigner(identity.signingSeed),
      }),
      shutdownGraceTime: 1_000,
    });
    // Its result states the right execution and names the victim's key, with a proof by its own
    // key, and its codec stamps the control worker's "proof checked" mark on it: the control
    // worker's proof codec must strip that mark, find the proof false, and leave the run to refuse.
    const stamp: PayloadCodec = {
      encode: async (ps) =>
        ps.map((p) => ({ ...p, metadata: { ...p.metadata, [PROOF_CHECKED_METADATA]: Buffer.from('ed25519') } })),
      decode: async (ps) => ps,
    };
    const impostor: Worker = await Worker.create({
      connection,
      namespace: 'default',
      taskQueue: runnerTaskQueue(v.name),
      dataConverter: { payloadConverterPath: PAYLOAD_CONVERTER_PATH, payloadCodecs: [stamp] },
      activities: {
        executeTask: async (req: ExecuteRequest): Promise<ExecutionResult> => {
          impostor.shutdown(); // one forgery; the run's question that follows goes to the victim
          const said = {
            run: req.runId,
            task: req.task.name,
            attempt: req.attempt,
            runner: v.name,
            lease: req.leaseId,
          };
          const outcome = success();
          return {
            ...outcome,
            proof: attacker.sign({ about: 'execution', ...said, outcome }),
            said: { about: 'execution', ...said, signer: victimKey },
          };
        },
      },
      shutdownGraceTime: 1_000,
    });
    const standIns = [reserving.run(), impostor.run()];
    const handle = await h.start({
      name: 'impostor-execution',
      group: '/test/security-identity',
      tasks: [{ name: 'deploy', steps: [`echo ran >> ${counter}`], pool: v.pool }],
    });
    let lost: RunState;
    try {
      lost = await h.waitFor(handle, (s) => refusalsOf(s).length >= 1, 60_000);
    } finally {
      for (const w of [reserving, impostor]) if (w.getState() === 'RUNNING') w.shutdown();
      await Promise.all(standIns);
      await connection.close();
    }
    console.log(
      `tried: an impostor polling ${runnerTaskQueue(v.name)} took "deploy" and completed it as a success (proof by another key, naming the victim's key, stamped "proof checked")`,
    );
    console.log(
      `happened: ${refusalsOf(lost)[0]?.message}; deploy is ${lost.tasks.deploy?.status} (${lost.tasks.deploy?.reason})`,
    );
    expect(refusalsOf(lost)[0]!.message).toBe(
      `refused: execution result for runner "${v.name}" not signed by "${v.name}" (the proof does not match its signing key)`,
    );
    expect(lost.tasks.deploy!.status).toBe('lost');
    expect(lines(counter)).toEqual([]);

    // The victim comes back and answers the run's question: it never received that attempt, so the
    // task is dispatched again and runs once, on the victim, signed.
    const back = startRunnerProcess({ address: h.address, name: v.name, pool: v.pool, dataDir: v.dir, env: PLAINTEXT });
    const done = await h.waitFor(handle, (s) => s.phase === 'finished', 90_000);
    console.log(
      `happened: the victim came back; deploy ${done.tasks.deploy?.status} on attempt ${done.tasks.deploy?.attempts}; it ran ${lines(counter).length} time(s)`,
    );
    expect(done.tasks.deploy!.status).toBe('success');
    expect(done.tasks.deploy!.attempts).toBe(2);
    expect(lines(counter)).toEqual(['ran']);
    back.kill();
  });
});
