/**
 * Records the histories that test/unit/replay.test.ts replays. Run it after a deliberate,
 * compatible-by-design change to workflows/ (none in production yet), never to paper over a
 * replay failure on runs that exist: those need `patched()` instead.
 *
 *   npx tsx scripts/record-histories.ts                    # every history
 *   npx tsx scripts/record-histories.ts runner-registry    # only the ones named
 *
 * It starts what it needs: its own headless dev server, a control worker, a runner, for the
 * registry history a stand-in runner serving the session and the ping on `runner/<name>`, as the
 * runner agent does (the history is the registry workflow's, not the runner's), and for the fleet
 * history a fleet testbed: moto (a real EC2 API, from .tools/moto-venv) with a fleet worker and
 * the control worker of its runner registry, running this script's bundle. The lost-on-the-way
 * run has its first execution taken by a stand-in that drops it (a poll response that never
 * arrived); the run asks the real runner, which never received it, and dispatches it again.
 */
import { CompleteAsyncError, Context } from '@temporalio/activity';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createPoolActivities } from '../activities/pool';
import type { RunnerControlActivities, SessionEnd, SessionRequest } from '../activities/types';
import { RunfleetClient } from '../src/client/client';
import { RunnerAdmin } from '../src/client/runners';
import { generateSigningKey, signStatement } from '../src/security/operator';
import { approvalStatement } from '../src/security/statements';
import type { RunState } from '../src/types';

/** The operator key of the recording: it grants the registry scenario's token. */
const RECORDING_OPERATOR = generateSigningKey();
import { WORKFLOW_BUNDLE_OPTIONS, createDataConverter } from '../src/codec';
import { fleetWorkflowId, poolTaskQueue, runnerTaskQueue, runnerWorkflowId } from '../src/ids';
import { SlotPool } from '../src/runner/slots';
import { startDevServer } from '../src/server/dev-server';
import { ensureTemporalBinary } from '../src/server/temporal-binary';
import { createControlWorker } from '../workers/control';
import { createRunner } from '../workers/runner';
import { sessionOnlineSignal, type RunnerLiveStatus } from '../workflows/runner-messages';

const root = resolve(__dirname, '..');
const out = join(root, 'test', 'replay', 'histories');
/** Every history this script records; the command line may name a subset. */
const HISTORIES = [
  'conditions-and-timeout',
  'cancelled',
  'approval',
  'fan-out-20',
  'queued-on-lease',
  'retry-cancel-matrix',
  'client-submitted',
  'lost-on-the-way',
  'runner-registry',
  'fleet',
] as const;
type HistoryName = (typeof HISTORIES)[number];

function chosen(args: string[]): Set<HistoryName> {
  const unknown = args.filter((a) => !(HISTORIES as readonly string[]).includes(a));
  if (unknown.length > 0) throw new Error(`unknown histories: ${unknown.join(', ')} (known: ${HISTORIES.join(', ')})`);
  return new Set((args.length > 0 ? args : HISTORIES) as HistoryName[]);
}

/** Polls `read` until `ok`; the registry's state changes arrive a workflow task later. */
async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not reached in ${timeoutMs} ms (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * A stand-in runner on `runner/<name>`: holds each session (heartbeating its status, telling the
 * registry it is online) until the registry cancels it, and answers pings.
 */
async function startStandInRunner(opts: {
  connection: NativeConnection;
  client: Client;
  name: string;
}): Promise<{ runnerId: string; publicKey: string; sessions: SessionRequest[]; stop(): Promise<void> }> {
  const runnerId = randomUUID();
  const bootId = randomUUID();
  // A real X25519 key: the control worker seals the (empty) key ring for it.
  const publicKey = generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const sessions: SessionRequest[] = [];
  let enabled = true;
  const status = (): RunnerLiveStatus => ({
    runnerId,
    bootId,
    version: 'replay-1.0',
    drivers: ['process', 'docker'],
    slots: 2,
    free: 2,
    accepting: enabled,
    running: [],
    at: new Date().toISOString(),
  });
  const activities: RunnerControlActivities = {
    async runnerSession(req): Promise<SessionEnd> {
      sessions.push(req);
      if (req.delete) return { reason: 'deleted', status: status() };
      enabled = req.enabled;
      const ctx = Context.current();
      ctx.heartbeat(status());
      await opts.client.workflow
        .getHandle(runnerWorkflowId(opts.name))
        .signal(sessionOnlineSignal, { runnerId, bootId, generation: req.generation });
      const beat = setInterval(() => ctx.heartbeat(status()), req.settings.heartbeatMs);
      try {
        await ctx.cancelled;
      } catch {
        // cancelled: the next generation, or this worker stopping
      } finally {
        clearInterval(beat);
      }
      return { reason: 'renew', status: status() };
    },
    pingRunner: async () => status(),
  };
  const worker = await Worker.create({
    connection: opts.connection,
    namespace: 'default',
    taskQueue: runnerTaskQueue(opts.name),
    dataConverter: createDataConverter(),
    activities,
    shutdownGraceTime: '2s',
  });
  const done = worker.run();
  return {
    runnerId,
    publicKey,
    sessions,
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}

async function main(): Promise<void> {
  const wanted = chosen(process.argv.slice(2));
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const server = await startDevServer({ binary: await ensureTemporalBinary({ projectRoot: root }), headless: true });
  const control = await NativeConnection.connect({ address: server.address });
  const runnerConnection = await NativeConnection.connect({ address: server.address });
  // No data keys: committed histories must replay (and be read) without any key.
  const dataConverter = createDataConverter();
  const client = new Client({ connection: await Connection.connect({ address: server.address }), dataConverter });
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: join(root, 'workflows', 'index.ts'),
    ...WORKFLOW_BUNDLE_OPTIONS,
  });
  const worker = await createControlWorker({
    connection: control,
    namespace: 'default',
    taskQueue: 'record',
    workflowBundle,
    // The recording runners have no registry record (no signing key to check).
    requireRunnerProofs: false,
    operatorPublicKey: RECORDING_OPERATOR.publicKey,
  });
  const runner = await createRunner({
    connection: runnerConnection,
    namespace: 'default',
    name: 'record-1',
    pool: 'record',
    slots: 4,
    dataDir: mkdtempSync(join(tmpdir(), 'runfleet-record-')),
    passEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  const t = (name: string, steps: string[], extra: Record<string, unknown> = {}) => ({
    name,
    steps,
    pool: 'record',
    ...extra,
  });
  const start = (id: string, tasks: unknown[], options?: Record<string, unknown>) =>
    client.workflow.start('runWorkflow', {
      taskQueue: 'record',
      workflowId: `run/replay/${id}`,
      args: [{ spec: { name: id, group: '/replay', tasks }, ...(options ? { options } : {}) }],
    });
  const save = async (name: string, handle: WorkflowHandle) => {
    writeFileSync(join(out, `${name}.json`), historyToJSON(await handle.fetchHistory()) + '\n');
    console.log(`recorded ${name}`);
  };

  const runScenarios = async () => {
    if (wanted.has('conditions-and-timeout')) {
      const conditions = await start('conditions', [
        t('a', ['echo a']),
        t('b', ['exit 2'], { depends: ['a'] }),
        t('c', ['exit 1'], { depends: ['a'], ignore_failure: true }),
        t('d', ['true'], { depends: ['b', 'c'] }),
        t('e', ['true'], { depends: [{ task: 'b', conditions: ['on_failure'] }] }),
        t('f', ['true'], { depends: [{ task: 'd', conditions: ['on_skipped'] }] }),
        t('g', ['sleep 5'], { timeout: '1s' }),
      ]);
      await conditions.result();
      await save('conditions-and-timeout', conditions);
    }

    if (wanted.has('cancelled')) {
      const cancelled = await start('cancel', [t('long', ['sleep 30']), t('next', ['true'], { depends: ['long'] })]);
      await new Promise((r) => setTimeout(r, 2_000));
      await cancelled.cancel();
      await cancelled.result().catch(() => undefined);
      await save('cancelled', cancelled);
    }

    if (wanted.has('approval')) {
      const approval = await start('approval', [
        t('build', ['true']),
        t('deploy', ['true'], { depends: ['build'], needs_approval: true }),
      ]);
      await new Promise((r) => setTimeout(r, 1_500));
      // Signed with the recording's operator key, as `runfleet run approve` signs (signed approvals).
      const at = new Date().toISOString();
      const nonce = randomUUID();
      const statement = approvalStatement(approval.workflowId, 'deploy', 'replay', { at, nonce });
      const signature = signStatement(RECORDING_OPERATOR.seed, statement);
      await approval.executeUpdate('approveTask', {
        args: [{ task: 'deploy', by: 'replay', operator: { at, nonce, signature } }],
      });
      await approval.result();
      await save('approval', approval);
    }

    if (wanted.has('fan-out-20')) {
      const fan = await start('fan-out', [
        t('root', ['true']),
        ...Array.from({ length: 20 }, (_, i) => t(`m${i}`, ['true'], { depends: ['root'] })),
        t('join', ['true'], { depends: Array.from({ length: 20 }, (_, i) => `m${i}`) }),
      ]);
      await fan.result();
      await save('fan-out-20', fan);
    }

    if (wanted.has('queued-on-lease')) {
      // After `root` the runner's leases have run a short task: ready tasks are queued behind
      // busy ones (queue-on-busy-lease), one behind `long` gives up waiting and is reserved again,
      // and the reservations nobody needs any more are cancelled.
      const queued = await start(
        'queued',
        [
          t('root', ['true']),
          t('long', ['sleep 5'], { depends: ['root'] }),
          ...Array.from({ length: 40 }, (_, i) => t(`q${i}`, ['true'], { depends: ['root'] })),
        ],
        // Queued as soon as a reservation is out, so that the 40 short tasks meet it.
        { queueBehindAfter: 0.001 },
      );
      await queued.result();
      await save('queued-on-lease', queued);
    }

    if (wanted.has('retry-cancel-matrix')) {
      // A retried failure (two attempts kept), a matrix whose dependent waits for both cells, and
      // one task cancelled while it runs (its dependent skipped). The folder is open to all: a
      // root runner runs tasks as users of their own.
      const dir = mkdtempSync(join(tmpdir(), 'runfleet-record-'));
      chmodSync(dir, 0o777);
      const marker = join(dir, 'ran');
      const started = join(dir, 'long-started');
      const features = await start('features', [
        t('flaky', [`n=$(cat ${marker} 2>/dev/null | wc -l); echo x >> ${marker}; [ "$n" -ge 1 ]`], {
          retry: { limit: 2, backoff: '1s' },
        }),
        t('cells', ['echo $MATRIX_V ${{ matrix.v }}'], { matrix: { v: ['a', 'b'] } }),
        t('after-cells', ['true'], { depends: ['cells', 'flaky'] }),
        t('long', [`touch ${started}`, 'sleep 60']),
        t('after-long', ['true'], { depends: ['long'] }),
      ]);
      await until(
        'the long task started',
        async () => existsSync(started),
        (ok) => ok,
        60_000,
      );
      await features.executeUpdate('cancelTask', { args: [{ task: 'long', by: 'replay', reason: 'recording' }] });
      const end = (await features.result()) as RunState;
      const outcome = Object.fromEntries(Object.entries(end.tasks).map(([k, v]) => [k, v.status]));
      const expected = {
        flaky: 'success',
        'cells-v-a': 'success',
        'cells-v-b': 'success',
        'after-cells': 'success',
        long: 'cancelled',
        'after-long': 'skipped',
      };
      if (JSON.stringify(outcome) !== JSON.stringify(expected))
        throw new Error(`retry-cancel-matrix ended ${JSON.stringify(outcome)}, expected ${JSON.stringify(expected)}`);
      await save('retry-cancel-matrix', features);
    }

    if (wanted.has('client-submitted')) {
      // Started as `runfleet run submit` starts a run (search attributes and memo in the start
      // call): a failure skips a chain, an on_failure and an on_skipped task run.
      const rf = RunfleetClient.fromClient(client, { controlTaskQueue: 'record', address: server.address });
      const submitted = await rf.submitRun(
        {
          name: 'submitted',
          group: '/replay',
          tasks: [
            t('cleanup', ['true'], { depends: [{ task: 'd2', conditions: ['on_skipped'] }] }),
            t('d2', ['true'], { depends: ['d1'] }),
            t('d1', ['true'], { depends: ['build'] }),
            t('build', ['exit 3']),
            t('notify', ['true'], { depends: [{ task: 'build', conditions: ['on_failure'] }] }),
            t('lint', ['true']),
            t('docs', ['true'], { depends: ['lint'] }),
          ],
        },
        { id: 'submitted' },
      );
      const handle = client.workflow.getHandle(submitted.workflowId);
      await handle.result();
      await save('client-submitted', handle);
    }
  };

  /**
   * A run whose first execution is lost on its way to runner `record-lost`: a stand-in grants the
   * lease and drops the execution (no heartbeat: lost). The real runner then answers the run's
   * `lookupTask` ("never received"), and the task runs again as attempt 2.
   */
  const lostOnTheWayScenario = async () => {
    if (!wanted.has('lost-on-the-way')) return;
    const name = 'record-lost';
    const connection = await NativeConnection.connect({ address: server.address });
    let dropped!: () => void;
    const taken = new Promise<void>((resolve) => (dropped = resolve));
    const slots = new SlotPool(1, { evictionMs: 30_000, lingerMs: 2_000 });
    const standIns = await Promise.all([
      Worker.create({
        connection,
        taskQueue: poolTaskQueue('lost'),
        activities: createPoolActivities({ runner: name, taskQueue: runnerTaskQueue(name), slots }),
      }),
      Worker.create({
        connection,
        taskQueue: runnerTaskQueue(name),
        activities: {
          executeTask: async () => {
            dropped();
            throw new CompleteAsyncError();
          },
        },
      }),
    ]);
    const standInsDone = standIns.map((w) => w.run());
    const lost = await client.workflow.start('runWorkflow', {
      taskQueue: 'record',
      workflowId: 'run/replay/lost-on-the-way',
      args: [
        {
          spec: {
            name: 'lost-on-the-way',
            group: '/replay',
            tasks: [
              { name: 'deploy', steps: ['true'], pool: 'lost' },
              { name: 'after', steps: ['true'], pool: 'lost', depends: ['deploy'] },
            ],
          },
          options: { heartbeatTimeout: '3s' },
        },
      ],
    });
    await taken;
    for (const w of standIns) w.shutdown();
    await Promise.all(standInsDone);
    const answering = await createRunner({
      connection,
      namespace: 'default',
      name,
      pool: 'lost',
      slots: 1,
      dataDir: mkdtempSync(join(tmpdir(), 'runfleet-record-')),
      passEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    const answeringDone = answering.run();
    try {
      const s = (await lost.result()) as { result: string; tasks: Record<string, { attempts: number }> };
      if (s.result !== 'success' || s.tasks.deploy?.attempts !== 2) throw new Error(`lost: ${JSON.stringify(s)}`);
    } finally {
      answering.shutdown();
      await answeringDone;
      await connection.close();
    }
    await save('lost-on-the-way', lost);
  };

  /** The registry workflow through its life: create, register, disable, enable, ping, purge. */
  const registryScenario = async () => {
    if (!wanted.has('runner-registry')) return;
    const name = 'replay-runner';
    const admin = new RunnerAdmin(client, {
      controlTaskQueue: 'record',
      address: server.address,
      operatorKey: RECORDING_OPERATOR.seed,
    });
    // issueToken through update-with-start.
    const created = await admin.create({ name, pool: 'record', settings: { heartbeatMs: 1_000 }, by: 'replay' });
    const standIn = await startStandInRunner({ connection: runnerConnection, client, name });
    try {
      await admin.register(name, {
        token: created.token,
        runnerId: standIn.runnerId,
        publicKey: standIn.publicKey,
        version: 'replay-1.0',
        drivers: ['process', 'docker'],
        hostname: 'replay-host',
      });
      const ready = () =>
        until(
          'runner ready',
          () => admin.describe(name),
          (v) => v.record.status === 'ready' && v.live !== null,
        );
      await ready();
      await admin.disable(name, { by: 'replay', reason: 'maintenance' });
      await until(
        'a disabled session',
        async () => standIn.sessions.at(-1),
        (s) => s?.enabled === false,
      );
      await admin.enable(name, { by: 'replay' });
      await until(
        'an enabled session',
        async () => standIn.sessions.at(-1),
        (s) => s?.enabled === true,
      );
      await ready();
      await admin.ping(name);
      const purged = await admin.purge(name, { by: 'replay', reason: 'recorded' });
      if (purged.final?.status !== 'deleted')
        throw new Error(`purge did not end the runner: ${JSON.stringify(purged)}`);
    } finally {
      await standIn.stop();
    }
    await save('runner-registry', client.workflow.getHandle(runnerWorkflowId(name)));
  };

  /**
   * The fleet entity workflow, `fleet/<name>`, against moto: apply (templates, token, a warm
   * pool of 2), a registration, provision (a claim, and the refill refresh it asks for),
   * startTask, release, an idle expiry (two-phase termination with its registry purge), an
   * operator's purge of the other instance's runner (`runnerGone`: marked and terminated by the
   * refresh it asks for, the pool refilled), a plan, and an apply with a new AMI (a new launch
   * template version). The workflow runs for good: its history is taken after the last step.
   */
  const fleetScenario = async () => {
    if (!wanted.has('fleet')) return;
    // Loaded here: the testbed's helpers import vitest, which only the fleet scenario can afford.
    const { startFleetTestbed } = await import('../test/helpers/fleet-testbed');
    const bed = await startFleetTestbed({ projectRoot: root, temporalAddress: server.address, workflowBundle });
    try {
      await bed.startWorker();
      const name = 'replay-fleet';
      const status = () => bed.fleet.status(name);
      const spec = bed.spec(name, {
        resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 2, maxInstances: 4 }],
        maxIdleTime: '2s',
      });
      const applied = await bed.fleet.apply(spec);
      if (applied.error !== null || applied.launched !== 2) throw new Error(`apply: ${JSON.stringify(applied)}`);
      const [a, b] = (await status()).records.map((r) => r.instanceId) as [string, string];
      await bed.registerInstance(name, a);

      const got = await bed.fleet.provision(name, { resourceClass: 'small', requestId: 'job-1' });
      if (got.instanceId !== a) throw new Error(`provision: ${JSON.stringify(got)}`);
      // The claim left one warm instance: the refresh it asked for launches a third.
      await until('the warm pool refilled', status, (s) => s.refreshes === 2 && s.records.length === 3);
      const held = { instanceId: a, requestId: 'job-1' };
      await bed.temporal.workflow.getHandle(fleetWorkflowId(name)).executeUpdate('startTask', { args: [held] });
      await bed.fleet.release(name, held);

      await new Promise((r) => setTimeout(r, 2_500)); // past maxIdleTime
      const expired = await bed.fleet.refresh(name);
      if (expired.markedTerminated !== 1 || expired.confirmedTerminated !== 1)
        throw new Error(`idle expiry: ${JSON.stringify(expired)}`);

      // An operator purges b's runner: the registry tells the fleet, which terminates b at once.
      await bed.registry.purge(b, { by: 'ops', reason: 'test', waitMs: 0 });
      await until(
        "the purged runner's instance terminated and the pool refilled",
        status,
        (s) => s.refreshes === 4 && s.records.length === 2 && !s.records.some((r) => r.instanceId === b),
      );

      await bed.fleet.plan(spec);
      const newAmi = await bed.fleet.apply({
        ...spec,
        launchTemplate: { ...spec.launchTemplate, ami: 'ami-0bbbbbbb' },
      });
      if (newAmi.error !== null || newAmi.templatesUpdated !== 1) throw new Error(`new AMI: ${JSON.stringify(newAmi)}`);
      await save('fleet', bed.temporal.workflow.getHandle(fleetWorkflowId(name)));
    } finally {
      await bed.stop();
    }
  };

  try {
    await Promise.all([
      worker.run(),
      runner.run(),
      runScenarios()
        .then(lostOnTheWayScenario)
        .then(registryScenario)
        .then(fleetScenario)
        .catch((err: unknown) => {
          // Printed here: closing the connections below would hide it behind their own error.
          console.error('a scenario failed:', err);
          throw err;
        })
        .finally(() => {
          runner.shutdown();
          worker.shutdown();
        }),
    ]);
  } finally {
    await client.connection.close();
    await control.close();
    await runnerConnection.close();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
