/**
 * The fleet worker: fleet workflows (`fleet/<name>`), their EC2 activities and their calls to
 * the runner registry, on the `runfleet-fleet` task queue. The only place a real EC2 client is built. One is enough: the
 * fleet workflow does little work per task; a second one is a hot standby.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import type { Logger } from '@temporalio/common';
import { Runtime, Worker, type NativeConnection, type WorkflowBundleOption } from '@temporalio/worker';
import { createEc2Activities } from '../activities/ec2';
import { createFleetRegistryActivities } from '../activities/fleet-registry';
import type { RunnerAdmin } from '../src/client/runners';
import { workflowCode } from './workflow-code';
import { KeyRing, createDataConverter } from '../src/codec';
import { RunfleetError } from '../src/errors';
import { FLEET_TASK_QUEUE } from '../src/ids';

export interface Ec2ClientOptions {
  region: string;
  /** A non-AWS endpoint (moto). Default: AWS's own for the region. */
  endpoint?: string;
  /** Static credentials (tests, moto). Default: the SDK's provider chain (env, profile, IMDS). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /**
   * Attempts per call, with the SDK's adaptive retry: backs off on throttling
   * (RequestLimitExceeded) and slows its own rate. Default 6; Temporal retries the activity after.
   */
  maxAttempts?: number;
}

export function createEc2Client(opts: Ec2ClientOptions): EC2Client {
  return new EC2Client({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    maxAttempts: opts.maxAttempts ?? 6,
    retryMode: 'adaptive',
  });
}

export interface FleetWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  /** Default `runfleet-fleet`. */
  taskQueue?: string;
  identity?: string;
  ec2: EC2Client;
  /**
   * The runner registry (on the control task queue): every launched instance gets a temporary
   * registry runner that accepts the fleet's token; terminations purge it.
   */
  registry: RunnerAdmin;
  /** Registration tokens derive from it: the same on every fleet worker, kept secret. */
  tokenSecret: string;
  /** EC2 calls in flight at once. Default 8: well under EC2's per-account request rate. */
  maxInFlight?: number;
  workflowBundle?: WorkflowBundleOption;
  /** One fleet workflow per fleet: a few are cached. Default 20. */
  maxCachedWorkflows?: number;
  log?: Logger;
  /** The data keys, as every client that talks to the fleet workflows has them. Default: none. */
  keys?: KeyRing;
}

export function createFleetWorker(opts: FleetWorkerOptions): Promise<Worker> {
  if (opts.tokenSecret.length < 16)
    throw new RunfleetError('InvalidConfig', 'the fleet token secret must be at least 16 characters');
  const log = opts.log ?? Runtime.instance().logger;
  return Worker.create({
    connection: opts.connection,
    dataConverter: createDataConverter({ keys: opts.keys ?? new KeyRing() }),
    namespace: opts.namespace,
    taskQueue: opts.taskQueue ?? FLEET_TASK_QUEUE,
    ...(opts.identity ? { identity: opts.identity } : {}),
    ...workflowCode(opts.workflowBundle),
    activities: {
      ...createEc2Activities({
        ec2: opts.ec2,
        log,
        maxInFlight: opts.maxInFlight ?? 8,
        tokenSecret: opts.tokenSecret,
      }),
      ...createFleetRegistryActivities({ registry: opts.registry, tokenSecret: opts.tokenSecret, log }),
    },
    maxCachedWorkflows: opts.maxCachedWorkflows ?? 20,
  });
}
