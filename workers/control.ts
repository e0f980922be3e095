/**
 * The control worker: runs the run workflows (and the other entity workflows) on the control
 * task queue. Stateless; start more of them to scale.
 */
import { dataConverter } from '../src/codec/compression';
import { Worker, type NativeConnection, type WorkflowBundleOption } from '@temporalio/worker';

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
}

export function createControlWorker(opts: ControlWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    dataConverter,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    ...(opts.identity ? { identity: opts.identity } : {}),
    ...(opts.workflowBundle
      ? { workflowBundle: opts.workflowBundle }
      : { workflowsPath: require.resolve('../workflows') }),
    maxCachedWorkflows: opts.maxCachedWorkflows ?? 500,
  });
}
