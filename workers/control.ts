/**
 * The control worker: runs the run workflows (and the other entity workflows) on the control
 * task queue, the registry's activities (it holds the data keys), and the runs' calls to EC2
 * fleets (claiming and releasing instances). Stateless; start more of
 * them to scale.
 */
import { Worker, type NativeConnection, type WorkflowBundleOption } from '@temporalio/worker';
import { createFleetLeaseActivities } from '../activities/fleet-lease';
import { createRegistryActivities } from '../activities/registry';
import { createRunnerKeyActivities } from '../activities/runner-keys';
import { createRunnerMatchActivities } from '../activities/runner-match';
import { createTaskLogStoreActivities } from '../activities/task-log-store';
import type { ObjectStore } from '../src/store/object-store';
import type { Tracing } from '../src/tracing';
import { FleetClient } from '../src/client/fleet';
import { workflowCode } from './workflow-code';
import { KeyRing, createDataConverter } from '../src/codec';

export interface ControlWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  identity?: string;
  /** A prebuilt workflow bundle; without it the worker bundles `workflows/` at start. */
  workflowBundle?: WorkflowBundleOption;
  /**
   * Workflows kept in memory between tasks. Several workers in one process share the
   * memory: size it explicitly (a run of 1,000 tasks is ~1 MiB of state).
   */
  maxCachedWorkflows?: number;
  /**
   * The data keys (`loadKeyRing(config)`): payloads are encrypted with the current one, and
   * runners receive them sealed when they register. Default: none (payloads in clear).
   */
  keys?: KeyRing;
  /**
   * Runs refuse a reservation answer, execution result, lookup answer or task report that its
   * runner's registered signing key does not verify (`src/security/runner-proof.ts`). Default
   * true. Turn it off only where runners have no registry record (in-process test runners):
   * anyone with namespace access can then speak in any runner's name.
   */
  requireRunnerProofs?: boolean;
  /**
   * base64 of the operator's raw Ed25519 public key (`operatorPublicKey(config)`): the registry
   * seals data keys only for registrations it signed, and applies only commands it signed.
   * Default: none (no runner is admitted, no operator command applies).
   */
  operatorPublicKey?: string | null;
  /**
   * How long a runner's signing key read from the registry answers runs again (the longest a
   * purged runner's key is still believed by a run that meets it). Default 5 s.
   */
  runnerKeyCacheMs?: number;
  /** For tests: each registry read of a runner's key takes at least this long. Default 0. */
  runnerKeyReadDelayMs?: number;
  /** The object store task logs are read from once their runner is gone. Default: none. */
  store?: ObjectStore | null;
  /** Spans of runs and their activities (`startTracing`). Default: none. */
  tracing?: Tracing | null;
}

export function createControlWorker(opts: ControlWorkerOptions): Promise<Worker> {
  const keys = opts.keys ?? new KeyRing();
  const code = workflowCode(opts.workflowBundle);
  return Worker.create({
    connection: opts.connection,
    dataConverter: createDataConverter({ keys }),
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    ...(opts.identity ? { identity: opts.identity } : {}),
    ...code,
    // Traced: its activities' spans (a run's trace reaches them through workflows/trace-context.ts).
    ...(opts.tracing ? { interceptors: { ...code.interceptors, activity: opts.tracing.activityInterceptors } } : {}),
    activities: {
      ...createRegistryActivities({ keys, operatorPublicKey: opts.operatorPublicKey ?? null }),
      ...createFleetLeaseActivities({ fleets: (client) => new FleetClient({ client }) }),
      ...createRunnerKeyActivities({
        requireProofs: opts.requireRunnerProofs ?? true,
        operatorPublicKey: opts.operatorPublicKey ?? null,
        ...(opts.runnerKeyCacheMs !== undefined ? { cacheMs: opts.runnerKeyCacheMs } : {}),
        ...(opts.runnerKeyReadDelayMs !== undefined ? { readDelayMs: opts.runnerKeyReadDelayMs } : {}),
      }),
      ...createTaskLogStoreActivities({ store: opts.store ?? null }),
      ...createRunnerMatchActivities({
        requireProofs: opts.requireRunnerProofs ?? true,
        operatorPublicKey: opts.operatorPublicKey ?? null,
      }),
    },
    maxCachedWorkflows: opts.maxCachedWorkflows ?? 500,
  });
}
