/**
 * An in-process Runfleet against the suite's real dev server: a control worker on a task
 * queue of its own and runners on pools of their own, so test files never steal each
 * other's work. Every worker is shut down in `stop()`, in reverse order of start.
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import {
  DefaultLogger,
  NativeConnection,
  Runtime,
  bundleWorkflowCode,
  makeTelemetryFilterString,
  type Worker,
} from '@temporalio/worker';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWorkflowId } from '../../src/ids';
import type { RunInput } from '../../workflows/run';
import { createControlWorker } from '../../workers/control';
import { createRunner, type Runner, type RunnerOptions } from '../../workers/runner';
import type { ObjectStore } from '../../src/store/object-store';
import type { RunnerSigner } from '../../src/security/runner-signer';
import type { RunState } from '../../src/types';
import { runEnvQuery, stateQuery } from '../../workflows/run-messages';
import { withLiveStatus } from '../../src/client/live-status';
import { KeyRing, WORKFLOW_BUNDLE_OPTIONS, createDataConverter } from '../../src/codec';
import { temporalAddress, uniqueName } from './temporal';
import { until } from './until';

export { TEST_OPERATOR_KEY_FILE, testOperator } from './operator-key';
import { RunnerAdmin } from '../../src/client/runners';
import { testOperator } from './operator-key';
import { registrationProof } from '../../src/registry/token';
import type { RegisterRequest } from '../../workflows/runner-messages';

let bundle: Promise<{ code: string }> | undefined;
let runtimeInstalled = false;

/** One Runtime per process; worker warnings (expected failures, idle pollers) would drown the test output. */
function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    // The core's own warnings (a workflow task that timed out on a busy machine) too.
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'ERROR', other: 'ERROR' }), forward: {} },
    },
  });
}

/**
 * Workers `require()` the payload converter by path, outside vitest's transform: let Node load
 * the TypeScript source as `bin/runfleet` does (tsx).
 */
let tsxRegistered = false;
export function registerTsx(): void {
  if (tsxRegistered) return;
  tsxRegistered = true;
  // A require: TypeScript's module resolution here does not read tsx's `exports` map.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('tsx/cjs/api') as { register(): unknown }).register();
}

/** The workflow bundle, built once per test file (webpack takes seconds), with Runfleet's payload converter. */
export function workflowBundle(): Promise<{ code: string }> {
  bundle ??= bundleWorkflowCode({
    workflowsPath: join(__dirname, '..', '..', 'workflows', 'index.ts'),
    ...WORKFLOW_BUNDLE_OPTIONS,
    logger: quietLogger,
  });
  return bundle;
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

export interface HarnessRunner {
  name: string;
  pool?: string;
  slots?: number;
  /** This runner's own keys (as sealed for it: `keys.keysFor(runnerKeyScopes(...))`); default: the harness's. */
  keys?: KeyRing;
  /** Signs what the runner tells runs (its identity signing key); default: unsigned. */
  signer?: RunnerSigner;
  /** Its object store of task logs, artifacts and caches (`RunnerOptions.objectStore`); default: none. */
  objectStore?: RunnerOptions['objectStore'];
  /** The runner's log lines. Default: dropped. */
  log?: RunnerOptions['log'];
}

export interface Harness {
  client: Client;
  address: string;
  controlQueue: string;
  /** The pool every runner of this harness serves unless told otherwise. */
  pool: string;
  dataDir: string;
  runners: Map<string, Runner>;
  startRunner(r: HarnessRunner): Promise<Runner>;
  stopRunner(name: string): Promise<void>;
  start(spec: unknown, options?: RunInput['options']): Promise<WorkflowHandle>;
  state(handle: WorkflowHandle): Promise<RunState>;
  waitFor(handle: WorkflowHandle, check: (s: RunState) => boolean, timeoutMs?: number): Promise<RunState>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  runners?: HarnessRunner[];
  withControl?: boolean;
  /**
   * Data keys of the client, the control worker and the in-process runners. Default: none
   * (payloads in clear, as the suite's other processes have no key file).
   */
  keys?: KeyRing;
  /**
   * The control worker's `requireRunnerProofs`. Default false here, unlike production: the
   * harness's in-process runners have no registry record, so no signing key to check. Tests of
   * runner identity turn it on and register their runners.
   */
  requireRunnerProofs?: boolean;
  /**
   * The control worker's workflow cache. Default 100. 0: every workflow task replays the run's
   * whole history, so a command that depends on when something resolved fails as nondeterminism.
   */
  maxCachedWorkflows?: number;
  /**
   * The control worker's operator public key (base64 raw Ed25519): runners register only with
   * tokens it granted. Default: the suite's operator key (`testOperator()`).
   */
  operatorPublicKey?: string;
  /** The control worker's `runnerKeyCacheMs`. Default: its own (5 s). */
  runnerKeyCacheMs?: number;
  /** The control worker's `runnerKeyReadDelayMs` (a slow registry). Default: none. */
  runnerKeyReadDelayMs?: number;
  /** The object store the control worker reads task logs from. Default: none. */
  store?: ObjectStore;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  installQuietRuntime();
  registerTsx();
  const address = temporalAddress();
  const keys = opts.keys ?? new KeyRing();
  const dataConverter = createDataConverter({ keys });
  const connection = await NativeConnection.connect({ address });
  const client = new Client({ connection: await Connection.connect({ address }), dataConverter });
  const controlQueue = uniqueName('control');
  const pool = uniqueName('pool');
  const dataDir = mkdtempSync(join(tmpdir(), 'runfleet-test-'));
  // Tasks run as users of their own on a root runner: tests' tasks leave their marks here, like /tmp.
  chmodSync(dataDir, 0o1777);
  const running: { worker: { shutdown(): void }; done: Promise<void> }[] = [];
  const runners = new Map<string, Runner>();
  const runnerDone = new Map<string, Promise<void>>();
  const runnerConnections = new Map<string, NativeConnection>();

  if (opts.withControl !== false) {
    const worker: Worker = await createControlWorker({
      connection,
      namespace: 'default',
      taskQueue: controlQueue,
      workflowBundle: await workflowBundle(),
      maxCachedWorkflows: opts.maxCachedWorkflows ?? 100,
      keys,
      requireRunnerProofs: opts.requireRunnerProofs ?? false,
      operatorPublicKey: opts.operatorPublicKey ?? testOperator().publicKey,
      ...(opts.runnerKeyCacheMs !== undefined ? { runnerKeyCacheMs: opts.runnerKeyCacheMs } : {}),
      ...(opts.runnerKeyReadDelayMs !== undefined ? { runnerKeyReadDelayMs: opts.runnerKeyReadDelayMs } : {}),
      ...(opts.store ? { store: opts.store } : {}),
    });
    running.push({ worker, done: worker.run() });
  }

  const startRunner = async (r: HarnessRunner): Promise<Runner> => {
    // Each runner is its own process in production; here each gets its own connection, since
    // one connection may carry only one worker per task queue.
    const runnerConnection = await NativeConnection.connect({ address });
    runnerConnections.set(r.name, runnerConnection);
    const runner = await createRunner({
      connection: runnerConnection,
      namespace: 'default',
      name: r.name,
      pool: r.pool ?? pool,
      slots: r.slots ?? 4,
      dataDir: join(dataDir, r.name),
      passEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      shutdownGraceMs: 1_000,
      dataConverter: r.keys ? createDataConverter({ keys: r.keys }) : dataConverter,
      fetchRunEnv: (runId) => client.workflow.getHandle(runId).query(runEnvQuery, { runner: r.name }),
      ...(r.signer ? { signer: r.signer } : {}),
      ...(r.objectStore ? { objectStore: r.objectStore } : {}),
      ...(r.log ? { log: r.log } : {}),
    });
    runners.set(r.name, runner);
    runnerDone.set(r.name, runner.run());
    return runner;
  };
  for (const r of opts.runners ?? []) await startRunner(r);

  const harness: Harness = {
    client,
    address,
    controlQueue,
    pool,
    dataDir,
    runners,
    startRunner,
    async stopRunner(name) {
      runners.get(name)?.shutdown();
      await runnerDone.get(name);
      runners.delete(name);
      runnerDone.delete(name);
      await runnerConnections.get(name)?.close();
      runnerConnections.delete(name);
    },
    async start(spec, options) {
      const s = spec as { group?: string };
      return client.workflow.start('runWorkflow', {
        taskQueue: controlQueue,
        workflowId: runWorkflowId(s.group ?? '/test', uniqueName('r')),
        args: [{ spec, ...(options ? { options } : {}) }],
      });
    },
    state: (handle) => liveState(handle),
    async waitFor(handle, check, timeoutMs = 60_000) {
      let last: RunState | undefined;
      return until(
        `a state of run ${handle.workflowId}`,
        async () => {
          last = await liveState(handle);
          return check(last) && last;
        },
        { timeoutMs, detail: () => `last state: ${JSON.stringify(last)}` },
      );
    },
    async stop() {
      for (const name of [...runners.keys()].reverse()) await harness.stopRunner(name);
      for (const r of running.reverse()) {
        r.worker.shutdown();
        await r.done;
      }
      await client.connection.close();
      await connection.close();
    },
  };
  return harness;
}

/** The run's state with running tasks marked as the server sees them (as `runfleet run show`). */
async function liveState(handle: WorkflowHandle): Promise<RunState> {
  const [state, description] = await Promise.all([handle.query(stateQuery), handle.describe()]);
  return withLiveStatus(state, description.raw.pendingActivities);
}

/** A task spec with the harness's pool. */
export function task(h: Harness, name: string, steps: string[], extra: Record<string, unknown> = {}) {
  return { name, steps, pool: h.pool, ...extra };
}

/**
 * The secret part of a registration token `rfr_<id>_<secret>`. The secret is base64url and may
 * itself hold `_`, so it is everything after the id, never a `split('_')` piece.
 */
export function tokenSecret(token: string): string {
  const match = /^rfr_[a-f0-9]+_(.+)$/.exec(token);
  if (!match) throw new Error(`not a registration token: ${token.slice(0, 8)}…`);
  return match[1]!;
}

/** A RunnerAdmin that signs with the suite's operator key. */
export function testRunnerAdmin(client: Client, controlTaskQueue: string, address?: string): RunnerAdmin {
  return new RunnerAdmin(client, {
    controlTaskQueue,
    ...(address ? { address } : {}),
    operatorKey: testOperator().seed,
  });
}

/**
 * A `register` request as a runner sends it: its identity and the token key's proof over it (the
 * token itself stays here). `signingKey` defaults to a fixed test key.
 */
export function registerRequest(
  token: string,
  name: string,
  identity: { runnerId: string; publicKey: string; signingKey?: string },
  extra: Partial<Pick<RegisterRequest, 'version' | 'drivers' | 'hostname'>> = {},
): RegisterRequest {
  const signingKey = identity.signingKey ?? TEST_SIGNING_KEY;
  return {
    ...registrationProof(token, { name, runnerId: identity.runnerId, publicKey: identity.publicKey, signingKey }),
    runnerId: identity.runnerId,
    publicKey: identity.publicKey,
    version: extra.version ?? 'test',
    drivers: extra.drivers ?? ['process'],
    hostname: extra.hostname ?? 'test-host',
  };
}

/** A fixed Ed25519 public key (32 bytes of 7) for fake runners that never sign anything. */
const TEST_SIGNING_KEY = Buffer.alloc(32, 7).toString('base64');
