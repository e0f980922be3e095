/**
 * The fleet part of the client library: plan, apply, status, and the calls provision, release
 * and runner registration make. Each validates its input first: an invalid fleet spec fails
 * with `InvalidConfig` naming every bad field, and nothing is sent. Node-side.
 */
import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import { RunfleetError } from '../errors';
import { toRunfleetError } from './errors';
import { formatProblems } from '../spec/validate';
import type { FleetInput, FleetOptions, FleetStatus, RefreshResult } from '../../workflows/fleet';
import type { Plan } from '../fleet/plan';
import type { FleetSpec } from '../fleet/schema';
import type { HoldRequest, ProvisionRequest, ProvisionResult } from '../fleet/types';
import { checkFleetSpec } from '../fleet/validate';
import { FLEET_TASK_QUEUE, WORKFLOW_TYPES, fleetWorkflowId } from '../ids';

export interface FleetClientOptions {
  client: Client;
  /** For error messages. */
  address?: string;
  /** Task queue of the fleet worker. Default `runfleet-fleet`. */
  taskQueue?: string;
  /** Options given to the fleet workflow when plan or apply starts it. */
  workflowOptions?: FleetOptions;
  /**
   * How long plan and apply wait for the fleet worker to take the request before they fail with
   * `ComponentUnavailable`. Default: no limit. The request stays queued: a worker that starts
   * later still serves it.
   */
  answerTimeoutMs?: number;
}

export class FleetClient {
  private readonly client: Client;
  private readonly address: string;
  private readonly taskQueue: string;
  private readonly workflowOptions: FleetOptions | undefined;
  private readonly answerTimeoutMs: number | undefined;

  constructor(opts: FleetClientOptions) {
    this.client = opts.client;
    this.address = opts.address ?? '(unknown address)';
    this.taskQueue = opts.taskQueue ?? FLEET_TASK_QUEUE;
    this.workflowOptions = opts.workflowOptions;
    this.answerTimeoutMs = opts.answerTimeoutMs;
  }

  /** What applying `input` would change, item by item. Starts the (idle) fleet workflow if needed. */
  async plan(input: unknown): Promise<Plan> {
    const spec = validate(input);
    return this.withStart(
      spec.name,
      (op) =>
        this.client.workflow.executeUpdateWithStart('plan', {
          args: [input],
          startWorkflowOperation: op,
        }) as Promise<Plan>,
    );
  }

  /** Applies `input` with one refresh (after any refresh in progress) and reports what it did. */
  async apply(input: unknown): Promise<RefreshResult> {
    const spec = validate(input);
    return this.withStart(
      spec.name,
      (op) =>
        this.client.workflow.executeUpdateWithStart('apply', {
          args: [input],
          startWorkflowOperation: op,
        }) as Promise<RefreshResult>,
    );
  }

  refresh(name: string): Promise<RefreshResult> {
    return this.call(name, (h) => h.executeUpdate('refresh', { args: [] }));
  }

  status(name: string): Promise<FleetStatus> {
    return this.call(name, (h) => h.query<FleetStatus>('fleetStatus'));
  }

  provision(name: string, req: ProvisionRequest): Promise<ProvisionResult> {
    return this.call(name, (h) => h.executeUpdate('provision', { args: [req] }));
  }

  startTask(name: string, req: HoldRequest): Promise<unknown> {
    return this.call(name, (h) => h.executeUpdate('startTask', { args: [req] }));
  }

  release(name: string, req: HoldRequest): Promise<unknown> {
    return this.call(name, (h) => h.executeUpdate('release', { args: [req] }));
  }

  private async withStart<T>(
    name: string,
    fn: (op: WithStartWorkflowOperation<(input: FleetInput) => Promise<void>>) => Promise<T>,
  ): Promise<T> {
    const workflowId = fleetWorkflowId(name);
    const op = new WithStartWorkflowOperation<(input: FleetInput) => Promise<void>>(WORKFLOW_TYPES.fleet, {
      workflowId,
      taskQueue: this.taskQueue,
      args: [{ name, ...(this.workflowOptions ? { options: this.workflowOptions } : {}) }],
      // The fleet workflow runs for good: use the running one, start it only the first time.
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    const noAnswer = () =>
      new RunfleetError(
        'ComponentUnavailable',
        `no answer from a fleet worker on task queue ${this.taskQueue}${this.answerTimeoutMs === undefined ? '' : ` within ${Math.round(this.answerTimeoutMs / 1000)} s`}: is \`runfleet fleet worker\` running? (the request stays queued and runs when one starts)`,
      );
    let timer: NodeJS.Timeout | undefined;
    try {
      const call = fn(op);
      if (this.answerTimeoutMs === undefined) return await call;
      return await Promise.race([
        call,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(noAnswer()), this.answerTimeoutMs);
        }),
      ]);
    } catch (err) {
      if (err instanceof RunfleetError) throw err;
      // The server gives up on an update-with-start no worker accepts in time (gRPC 9).
      const code =
        (err as { code?: unknown; cause?: { code?: unknown } }).code ??
        (err as { cause?: { code?: unknown } }).cause?.code;
      if (code === 9 && /Update-with-Start/i.test(String((err as Error).message))) {
        throw noAnswer();
      }
      throw toRunfleetError(err, { address: this.address, namespace: this.client.options.namespace, workflowId });
    } finally {
      clearTimeout(timer);
    }
  }

  private async call<T>(name: string, fn: (h: ReturnType<Client['workflow']['getHandle']>) => Promise<T>): Promise<T> {
    const workflowId = fleetWorkflowId(name);
    try {
      return await fn(this.client.workflow.getHandle(workflowId));
    } catch (err) {
      const e = toRunfleetError(err, { address: this.address, namespace: this.client.options.namespace, workflowId });
      if (e instanceof RunfleetError && e.code === 'NotFound' && e.message.startsWith('no run'))
        throw new RunfleetError('NotFound', `no fleet "${name}": run \`runfleet fleet apply\` first`);
      throw e;
    }
  }
}

function validate(input: unknown): FleetSpec {
  const checked = checkFleetSpec(input);
  if (!checked.ok)
    throw new RunfleetError('InvalidConfig', formatProblems('invalid fleet spec', checked.problems), {
      problems: checked.problems,
    });
  return checked.spec;
}
