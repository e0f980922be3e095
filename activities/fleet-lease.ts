/**
 * A run's side of an EC2 fleet: a task that names a fleet resource class claims an instance for
 * itself (`provision`, which launches one when none is idle and waits for its runner), tells the
 * fleet the task started (`startTask`: refused when the claim was lost, so nothing runs on an
 * instance being terminated), and gives it back afterwards (`release`). Activities of the
 * control worker, calling the `fleet/<name>` updates with the worker's own client. All three
 * are idempotent by request id, so a retry converges.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { asFailure } from '../src/failures';
import type { ProvisionResult } from '../src/fleet/types';
import type { FleetCalls } from './types';

export interface FleetLeaseRequest {
  fleet: string;
  resourceClass: string;
  /** `<run workflow id>/<task>/<round>`: the same request gets the same instance. */
  requestId: string;
  /** How long the claim lasts unless released (the task's timeout and a margin). */
  leaseMs: number;
}

export interface FleetHold {
  fleet: string;
  instanceId: string;
  requestId: string;
  leaseMs?: number;
}

export interface FleetLeaseActivities {
  provisionFleetRunner(req: FleetLeaseRequest): Promise<ProvisionResult>;
  startFleetTask(req: FleetHold): Promise<void>;
  releaseFleetRunner(req: FleetHold): Promise<void>;
}

export interface FleetLeaseDeps {
  /** The fleet calls on a client: the worker passes `(client) => new FleetClient({ client })`. */
  fleets: (client: Client) => FleetCalls;
  /** Default: the activity's own client (the worker's connection, data converter and namespace). */
  client?: () => Client;
}

export function createFleetLeaseActivities(deps: FleetLeaseDeps): FleetLeaseActivities {
  const fleets = () => deps.fleets(deps.client ? deps.client() : Context.current().client);
  return {
    async provisionFleetRunner(req) {
      return coded(() =>
        fleets().provision(req.fleet, {
          resourceClass: req.resourceClass,
          requestId: req.requestId,
          leaseMs: req.leaseMs,
        }),
      );
    },
    async startFleetTask(req) {
      await coded(() => fleets().startTask(req.fleet, hold(req)));
    },
    async releaseFleetRunner(req) {
      await coded(() => fleets().release(req.fleet, hold(req)));
    },
  };
}

function hold(req: FleetHold) {
  return { instanceId: req.instanceId, requestId: req.requestId, ...(req.leaseMs ? { leaseMs: req.leaseMs } : {}) };
}

/** Fleet errors keep their code across the activity boundary: NotFound and InvalidState are final. */
async function coded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw asFailure(err);
  }
}
