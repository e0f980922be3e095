/**
 * The Runfleet client: what the CLI and user scripts call to submit, inspect and manage runs.
 * A thin, typed layer over the Temporal client: every input is validated before anything
 * starts, and every Temporal error comes back as a RunfleetError with a code.
 *
 * ```ts
 * const rf = await RunfleetClient.connect({ address: 'localhost:7233', namespace: 'default', controlTaskQueue: 'runfleet-control' });
 * const { workflowId } = await rf.submitRun({ name: 'ci', tasks: [{ name: 'test', steps: ['npm test'] }] });
 * const state = await rf.waitRun(workflowId);
 * await rf.close();
 * ```
 */
import { randomBytes } from 'node:crypto';
import {
  CancelledFailure,
  Client,
  Connection,
  TerminatedFailure,
  TimeoutFailure,
  WithStartWorkflowOperation,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type ClientInterceptors,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { type DataConverter, type UpdateDefinition } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { ArtifactLink, LogChunk } from '../../activities/types';
import { RUN_SA } from '../search-attributes';
import {
  approveTaskUpdate,
  cancelTaskUpdate,
  inputQuery,
  stateQuery,
  stopRunSignal,
} from '../../workflows/run-messages';
import {
  CHANGEGROUP_WORKFLOW_TYPE,
  changegroupQuery,
  checkTokenUpdate,
  setLimitUpdate,
  submitRunUpdate,
} from '../../workflows/changegroup-messages';
import type { changegroupWorkflow } from '../../workflows/changegroup';
import { initialState, limitProblem, type ChangegroupView, type Submitted } from '../changegroup/state';
import { checkChangegroupName, decodeUpdateToken, encodeUpdateToken } from '../changegroup/token';
import { withLiveStatus } from './live-status';
import { timestampIso } from './timestamps';
import {
  listPage,
  pageTokenText,
  runSummary,
  runsQuery,
  type ListRunsFilter,
  type RunPage,
  type RunSummary,
  type VisibilityRecord,
} from './run-list';

export type { ListRunsFilter, RunPage, RunSummary } from './run-list';
import { createDataConverter } from '../codec';
import type { runWorkflow } from '../../workflows/run';
import type { RunArtifactsInput } from '../../workflows/artifacts';
import type { FetchTaskLogInput } from '../../workflows/log';
import type { TlsOptions } from '../connection';
import { signStatement } from '../security/operator';
import { approvalStatement } from '../security/statements';
import { RunfleetError } from '../errors';
import { WORKFLOW_TYPES, changegroupWorkflowId, groupPrefixes, runWorkflowId } from '../ids';
import type { Restart, RunSpecInput } from '../spec/schema';
import { checkRunSpec, formatProblems, validateRunOptions } from '../spec/validate';
import { FINAL_TASK_STATUSES, type RunState, type TaskStatus } from '../types';
import { isUnavailable, toRunfleetError, unreachable } from './errors';
import { grpcStatus, isTransient, rideOut } from './ride';
import { sleep } from '../sleep';
import { checkRunId, newRunId, resolveRunWorkflowId } from './ids';
import { RUN_PATCH_GATE } from '../run/patches';

export interface RunfleetClientOptions {
  /** Temporal frontend, `host:port`. */
  address: string;
  namespace: string;
  /** Task queue of the control worker (run workflows, log reads). */
  controlTaskQueue: string;
  /** Shown in the Web UI as who started or cancelled a workflow. Default: the SDK's `pid@host`. */
  identity?: string;
  /**
   * How long `connect` waits for the server. Default 5 s: long enough for a remote server,
   * short enough that a mistyped address is reported before the user gives up.
   */
  connectTimeoutMs?: number;
  /** TLS, as `connectionOptions` (src/connection.ts) reads it. Default: plain TCP. */
  tls?: TlsOptions | boolean;
  /** Sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** Extra gRPC headers on every call. */
  metadata?: Record<string, string>;
  /**
   * How payloads are converted, compressed and encrypted: `createDataConverter({ keys })` with the
   * key file's ring. Default: no keys (payloads compressed, not encrypted; encrypted ones fail to decode).
   */
  dataConverter?: DataConverter;
  /** The client's interceptors: tracing's (`startTracing(...).clientInterceptors`). Default: none. */
  interceptors?: ClientInterceptors;
}

export interface FromClientOptions {
  controlTaskQueue: string;
  /** Named in ServerUnreachable messages. Default `(unknown address)`. */
  address?: string;
}

export interface SubmitOptions {
  /** Last segment of the workflow id. Default: a new short, time-sortable id. */
  id?: string;
  /** Scheduling options of the run (see RunOptionsSchema); validated before the start. */
  options?: unknown;
  /** Set by `restartRun`: the run restarted and the succeeded tasks kept from it. */
  restart?: Restart;
  /**
   * Submit through this changegroup: the changegroup workflow records the run and starts it,
   * and the run waits as `queued` while the changegroup has `limit` active runs. Default: none
   * (the run starts directly).
   */
  changegroup?: string;
  /** With `changegroup`: set its limit of active runs in the same mutation. Default: leave it (none at first). */
  limit?: number;
  /**
   * An update token (`getUpdateToken`) that covers `changegroup`: the submission is refused with
   * `Conflict` if the changegroup changed since. Default: no check.
   */
  token?: string;
}

/** Options of mutating calls that take an update token. */
export interface TokenOptions {
  /** Refuse with `Conflict` (doing nothing) if a changegroup of the token changed since it was read. */
  token?: string;
}

export interface RestartOptions {
  /** `failed` (default): keep succeeded tasks, run the rest again. `scratch`: run everything. */
  from?: 'failed' | 'scratch';
  /** Last segment of the new run's workflow id. */
  id?: string;
}

export interface SubmittedRun {
  /**
   * The run's id, `run/<group>/<id>`: the one id every command and call takes and prints (`run
   * show`, `run list`, a run's state all say `id` with this value).
   */
  id: string;
  /** The same as `id`: the run's Temporal workflow id. */
  workflowId: string;
  /** Temporal's run id of the workflow execution. */
  runId: string;
  group: string;
  name: string;
  /** Set when the run was submitted through a changegroup: its place in it. */
  changegroup?: { name: string } & Submitted;
}

/** A piece of a task's log and where the task is. */
export interface TaskLogChunk extends LogChunk {
  taskStatus: TaskStatus;
  runner: string | null;
  /** The attempt whose log this is. */
  attempt: number;
}

export interface WatchOptions {
  /** Poll interval. Default 500 ms: live enough for people, two cheap queries a second. */
  intervalMs?: number;
  signal?: AbortSignal;
  /**
   * Told what the watch waits for while the service or the control worker does not answer (the
   * watch rides that out, see `rideOut`), and when they answer again.
   */
  onWait?: (message: string) => void;
}

/** The search attribute keys of a run (also set on runs a runner schedule starts): src/search-attributes.ts. */
export const RUN_SEARCH_ATTRIBUTES = RUN_SA;
const SA = RUN_SEARCH_ATTRIBUTES;

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** A query of a closed run replays its history on a worker: seconds, unless no worker is up. */
const QUERY_DEADLINE_MS = 10_000;
/** Log reads are interactive; nobody waits a minute for a screenful of log. */
const LOG_READ_TIMEOUT_MS = 60_000;
/** Bytes per log read: well under Temporal's 2 MiB payload limit, a few screens of text. */
export const DEFAULT_LOG_LIMIT = 64 * 1024;

export class RunfleetClient {
  readonly client: Client;
  readonly address: string;
  readonly namespace: string;
  readonly controlTaskQueue: string;
  private readonly ownedConnection: Connection | null;
  /**
   * Set by the first call the namespace answered: a "namespace not found" after that is the
   * service failing to read its namespaces (its database down), which a watcher rides out.
   */
  private namespaceAnswered = false;

  private constructor(client: Client, address: string, controlTaskQueue: string, ownedConnection: Connection | null) {
    this.client = client;
    this.address = address;
    this.namespace = client.options.namespace;
    this.controlTaskQueue = controlTaskQueue;
    this.ownedConnection = ownedConnection;
  }

  /** Connects to Temporal; fails with `ServerUnreachable` when the server does not answer. */
  static async connect(opts: RunfleetClientOptions): Promise<RunfleetClient> {
    const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    let connection: Connection;
    try {
      connection = await Connection.connect({
        address: opts.address,
        connectTimeout: connectTimeoutMs,
        ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
        ...(opts.apiKey !== undefined ? { apiKey: opts.apiKey } : {}),
        ...(opts.metadata ? { metadata: opts.metadata } : {}),
      });
    } catch (err) {
      // Connecting only waits for the channel: any failure here means the server is not there,
      // or, with TLS, a handshake that failed (the gRPC client does not say which).
      const why = err instanceof Error ? err.message : String(err);
      const tlsHint = opts.tls
        ? '; with TLS, also check that the server certificate is signed by the configured CA ' +
          '(TEMPORAL_TLS_SERVER_CA_CERT_PATH) and names the host (TEMPORAL_TLS_SERVER_NAME), and the client certificate'
        : '';
      throw unreachable(opts.address, new Error(`no answer within ${connectTimeoutMs / 1000}s (${why})${tlsHint}`));
    }
    const client = new Client({
      connection,
      namespace: opts.namespace,
      identity: opts.identity,
      dataConverter: opts.dataConverter ?? createDataConverter(),
      ...(opts.interceptors ? { interceptors: opts.interceptors } : {}),
    });
    return new RunfleetClient(client, opts.address, opts.controlTaskQueue, connection);
  }

  /** Wraps an existing Temporal client (its connection stays the caller's to close). */
  static fromClient(client: Client, opts: FromClientOptions): RunfleetClient {
    return new RunfleetClient(client, opts.address ?? '(unknown address)', opts.controlTaskQueue, null);
  }

  /** Closes the connection if `connect` opened it. */
  async close(): Promise<void> {
    await this.ownedConnection?.close();
  }

  /**
   * Validates a run spec (or `{ spec, options }`) and starts its workflow. Nothing starts when
   * the spec is invalid (`InvalidRunSpec`) or the id is taken (`AlreadyExists`).
   */
  async submitRun(
    specOrInput: RunSpecInput | { spec: unknown; options?: unknown } | unknown,
    opts: SubmitOptions = {},
  ): Promise<SubmittedRun> {
    const input = isRunInput(specOrInput) ? specOrInput : { spec: specOrInput, options: undefined };
    const checked = checkRunSpec(input.spec);
    if (!checked.ok) {
      throw new RunfleetError('InvalidRunSpec', formatProblems('invalid run spec', checked.problems), {
        problems: checked.problems,
      });
    }
    const options = opts.options ?? input.options;
    validateRunOptions(options);
    const spec = checked.spec;
    const id = opts.id === undefined ? newRunId() : checkRunId(opts.id);
    const workflowId = runWorkflowId(spec.group, id);

    if (opts.changegroup !== undefined) {
      const name = checkChangegroupName(opts.changegroup);
      if (opts.limit !== undefined) {
        const bad = limitProblem(opts.limit);
        if (bad) throw new RunfleetError('InvalidArgument', bad);
      }
      const expectedVersion = await this.checkOtherChangegroups(opts.token, name);
      const submitted = await this.changegroupUpdate(name, submitRunUpdate, {
        workflowId,
        input: {
          spec: input.spec,
          ...(options === undefined ? {} : { options }),
          ...(opts.restart ? { restart: opts.restart } : {}),
        },
        name: spec.name,
        ...(expectedVersion === undefined ? {} : { expectedVersion }),
        ...(opts.limit === undefined ? {} : { limit: opts.limit }),
      });
      const { runId, ...place } = submitted;
      return { id: workflowId, workflowId, runId, group: spec.group, name: spec.name, changegroup: { name, ...place } };
    }
    if (opts.token !== undefined || opts.limit !== undefined) {
      throw new RunfleetError(
        'InvalidArgument',
        'a token or a limit applies to a changegroup: name one (--changegroup)',
      );
    }

    return this.call(workflowId, async () => {
      const handle = await this.client.workflow.start<typeof runWorkflow>(WORKFLOW_TYPES.run, {
        taskQueue: this.controlTaskQueue,
        workflowId,
        // Send what the user wrote, not the parsed spec: the workflow parses it again, and
        // parsed durations are milliseconds where the file's numbers are seconds.
        args: [
          {
            spec: input.spec,
            ...(options === undefined ? {} : { options }),
            ...(opts.restart ? { restart: opts.restart } : {}),
            // Every patch of this gate, taken without asking: no marker, no upsert.
            patchGate: RUN_PATCH_GATE,
          },
        ],
        // A run id names one run forever: never start a second one with it, running or closed.
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        // Set at start so the run is listable at once, as the workflow would set them: it upserts
        // only what differs. No changegroup admits it, so it is running from its first workflow
        // task on (`queued` is a run waiting for its changegroup).
        typedSearchAttributes: [
          { key: SA.group, value: spec.group },
          { key: SA.groupPath, value: groupPrefixes(spec.group) },
          { key: SA.runName, value: spec.name },
          { key: SA.phase, value: 'running' },
          { key: SA.result, value: 'unknown' },
        ],
        memo: opts.restart ? { name: spec.name, restartOf: opts.restart.of } : { name: spec.name },
      });
      return { id: workflowId, workflowId, runId: handle.firstExecutionRunId, group: spec.group, name: spec.name };
    });
  }

  /**
   * The whole state of a run: a completed run's result, otherwise the `state` query (which a
   * worker answers by replaying the run). `NotFound` when there is no such run.
   */
  async getRun(ref: string): Promise<RunState> {
    const workflowId = resolveRunWorkflowId(ref);
    return this.call(workflowId, async () => {
      const handle = this.runHandle(workflowId);
      const description = await handle.describe();
      // The result is the final state, read from history: no worker needed, nothing to replay.
      if (description.status.name === 'COMPLETED') return await handle.result();
      try {
        const state = await this.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(stateQuery));
        return withLiveStatus(state, description.raw.pendingActivities);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError || isUnavailable(err)) throw err;
        throw noWorker(workflowId, description, err, this.controlTaskQueue);
      }
    });
  }

  /**
   * Starts a new run from a finished one, linked to it (`restartOf`). From its failed tasks (the
   * default), tasks that succeeded keep their results and are not executed again; from scratch,
   * everything runs. The old run must have ended. A run a changegroup admitted is restarted
   * through that changegroup: the new run waits as `queued` for a slot like any other.
   */
  async restartRun(ref: string, opts: RestartOptions = {}): Promise<SubmittedRun> {
    const workflowId = resolveRunWorkflowId(ref);
    const from = opts.from ?? 'failed';
    if (from !== 'failed' && from !== 'scratch') {
      throw new RunfleetError('InvalidArgument', `restart from "${String(from)}": use failed or scratch`);
    }
    const old = await this.getRun(workflowId);
    if (old.phase !== 'finished' && old.phase !== 'cancelled') {
      throw new RunfleetError('InvalidState', `run ${workflowId} is still ${old.phase}; stop it or wait for it first`);
    }
    const input = await this.call(workflowId, () =>
      this.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => this.runHandle(workflowId).query(inputQuery)),
    );
    // The changegroup names itself in the memo of every run it starts (a continue-as-new keeps
    // the memo); without it the restart would escape the changegroup's limit.
    const changegroup = await this.call(workflowId, async () =>
      memoChangegroup((await this.runHandle(workflowId).describe()).memo),
    );
    const keep: Restart['keep'] = {};
    if (from === 'failed') {
      for (const [name, t] of Object.entries(old.tasks)) {
        if (t.status !== 'success') continue;
        keep[name] = {
          runner: t.runner,
          startedAt: t.startedAt,
          finishedAt: t.finishedAt,
          exitCode: t.exitCode,
          attempts: t.attempts,
        };
      }
    }
    return this.submitRun(
      { spec: input.spec, options: input.options },
      { id: opts.id, restart: { of: workflowId, keep }, ...(changegroup === undefined ? {} : { changegroup }) },
    );
  }

  /**
   * Waits for a run to end and returns its final state (a cancelled run's too), riding out a
   * service that stops answering meanwhile (see `rideOut`).
   */
  async waitRun(ref: string, opts: Omit<WatchOptions, 'intervalMs'> = {}): Promise<RunState> {
    const workflowId = resolveRunWorkflowId(ref);
    return rideOut(`run ${workflowId}`, () => this.waitRunOnce(workflowId), opts);
  }

  private async waitRunOnce(workflowId: string): Promise<RunState> {
    return this.call(workflowId, async () => {
      try {
        return await this.runHandle(workflowId).result();
      } catch (err) {
        // Cancelled or terminated: the workflow returned nothing, its query still has the state.
        if (
          err instanceof WorkflowFailedError &&
          (err.cause instanceof CancelledFailure || err.cause instanceof TerminatedFailure)
        ) {
          return await this.getRun(workflowId);
        }
        throw err;
      }
    });
  }

  /**
   * Polls a run's state every `intervalMs` and calls `onState` with each, until the run ends;
   * returns the final state.
   */
  async watchRun(ref: string, onState: (state: RunState) => void, opts: WatchOptions = {}): Promise<RunState> {
    const workflowId = resolveRunWorkflowId(ref);
    const interval = opts.intervalMs ?? 500;
    // A terminated run never reaches a final phase: the closed workflow ends the watch too.
    let closed = false;
    const closing = new AbortController();
    const onAbort = () => closing.abort();
    opts.signal?.addEventListener('abort', onAbort);
    const closedWatch = this.client
      .withAbortSignal(closing.signal, () => this.runHandle(workflowId).result())
      .then(
        () => void (closed = true),
        (err: unknown) => void (closed = closed || err instanceof WorkflowFailedError),
      );
    const ride = { signal: opts.signal, onWait: opts.onWait };
    try {
      for (;;) {
        const state = await rideOut(`run ${workflowId}`, () => this.getRun(workflowId), ride);
        onState(state);
        if (state.phase === 'finished' || state.phase === 'cancelled') return state;
        if (closed) return state;
        if (opts.signal?.aborted) throw new RunfleetError('InvalidState', 'watch aborted');
        await sleep(interval, opts.signal);
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      closing.abort();
      await closedWatch;
    }
  }

  /** Lists runs from Temporal visibility, newest first (the first page; see `listRunsPage`). */
  async listRuns(filter: ListRunsFilter = {}): Promise<RunSummary[]> {
    return (await this.listRunsPage(filter)).runs;
  }

  /**
   * One page of runs, newest first, and the token of the next page (null at the end). Pages
   * come from Temporal visibility, so listing millions of runs costs no workflow anything.
   */
  async listRunsPage(filter: ListRunsFilter = {}): Promise<RunPage> {
    const query = runsQuery(filter);
    const { limit, pageToken } = listPage(filter);
    return this.call(undefined, async () => {
      const page = await this.client.workflowService.listWorkflowExecutions({
        namespace: this.namespace,
        query,
        pageSize: limit,
        nextPageToken: pageToken,
      });
      return {
        runs: (page.executions ?? []).map((info) => runSummary(visibilityRecord(info))),
        nextPageToken: pageTokenText(page.nextPageToken),
      };
    });
  }

  /** How many runs match (group prefix, phase, result, time), counted by visibility. */
  async countRuns(filter: Omit<ListRunsFilter, 'limit' | 'pageToken'> = {}): Promise<number> {
    const query = runsQuery(filter);
    return this.call(undefined, async () => (await this.client.workflow.count(query)).count);
  }

  /**
   * Cancels (stops) a run: started tasks are killed, the others never start. With a token, the
   * token is checked (and spent) first, changegroup by changegroup (see `spendUpdateToken`).
   */
  async cancelRun(ref: string, stop: { reason?: string; by?: string } = {}, opts: TokenOptions = {}): Promise<void> {
    const workflowId = resolveRunWorkflowId(ref);
    const reason = stop.reason?.trim() || 'cancelled by request';
    const by = stop.by?.trim() || 'unknown';
    if (opts.token !== undefined) await this.spendUpdateToken(opts.token);
    await this.call(workflowId, async () => {
      const handle = this.runHandle(workflowId);
      const description = await handle.describe();
      if (description.status.name !== 'RUNNING') {
        throw new RunfleetError(
          'InvalidState',
          `run ${workflowId} has already ended (${description.status.name.toLowerCase()})`,
        );
      }
      // A stop, not a Temporal cancel: the run records who stopped it and why, and completes.
      await handle.signal(stopRunSignal, { reason, by });
    });
  }

  /**
   * Approves a task that waits with `needs_approval`; returns the run's state after it. With a
   * token, the token is checked (and spent) first (see `spendUpdateToken`).
   */
  async approveTask(
    ref: string,
    task: string,
    by: string,
    opts: TokenOptions & {
      /** base64 seed of the operator signing key (`readOperatorKeyFile`): control workers accept only signed approvals. */
      operatorKey?: string | null;
    } = {},
  ): Promise<RunState> {
    const workflowId = resolveRunWorkflowId(ref);
    if (task.length === 0) throw new RunfleetError('InvalidArgument', 'name the task to approve');
    if (by.trim().length === 0)
      throw new RunfleetError('InvalidArgument', 'an approval names who approves (--by NAME)');
    if (!opts.operatorKey)
      throw new RunfleetError(
        'Unauthorized',
        'approving needs the operator signing key (operator.keyFile, RUNFLEET_OPERATOR_KEY_FILE; `runfleet operator-key create`)',
      );
    if (opts.token !== undefined) await this.spendUpdateToken(opts.token);
    const at = new Date().toISOString();
    const nonce = randomBytes(16).toString('hex');
    const signature = signStatement(opts.operatorKey, approvalStatement(workflowId, task, by, { at, nonce }));
    return this.call(workflowId, async () => {
      const handle = this.runHandle(workflowId);
      try {
        return await handle.executeUpdate(approveTaskUpdate, {
          args: [{ task, by, operator: { at, nonce, signature } }],
        });
      } catch (err) {
        // The server answers NOT_FOUND for an update to a closed workflow as well.
        if (err instanceof WorkflowNotFoundError) {
          const description = await handle.describe();
          throw new RunfleetError(
            'InvalidState',
            `run ${workflowId} has already ended (${description.status.name.toLowerCase()})`,
          );
        }
        throw err;
      }
    });
  }

  /**
   * Cancels one task of a running run (`run cancel ID --task NAME`): not started, it never
   * starts; running, its runner kills it; lost, the run stops waiting for it. Its dependents
   * follow their conditions (a cancelled parent counts as skipped). Returns the run's state after.
   */
  async cancelTask(ref: string, task: string, opts: { reason?: string; by: string }): Promise<RunState> {
    const workflowId = resolveRunWorkflowId(ref);
    if (task.length === 0) throw new RunfleetError('InvalidArgument', 'name the task to cancel');
    if (opts.by.trim().length === 0)
      throw new RunfleetError('InvalidArgument', 'a cancel names who cancels (--by NAME)');
    return this.call(workflowId, async () => {
      const handle = this.runHandle(workflowId);
      try {
        return await handle.executeUpdate(cancelTaskUpdate, {
          args: [{ task, by: opts.by, reason: opts.reason ?? 'cancelled by request' }],
        });
      } catch (err) {
        // The server answers NOT_FOUND for an update to a closed workflow as well.
        if (err instanceof WorkflowNotFoundError) {
          const description = await handle.describe();
          throw new RunfleetError(
            'InvalidState',
            `run ${workflowId} has already ended (${description.status.name.toLowerCase()})`,
          );
        }
        throw err;
      }
    });
  }

  /**
   * Reads a task attempt's log (default: its latest) through `fetchTaskLogWorkflow` on the control
   * queue: from the runner that ran it while it runs, from the object store once it has ended or
   * when its runner is gone. `NotFound` when the task does not exist, or when its runner is
   * offline and no store has its log.
   */
  async readTaskLog(
    ref: string,
    task: string,
    offset = 0,
    limit = DEFAULT_LOG_LIMIT,
    attempt?: number,
  ): Promise<TaskLogChunk> {
    const workflowId = resolveRunWorkflowId(ref);
    if (!Number.isInteger(offset) || offset < 0)
      throw new RunfleetError('InvalidArgument', 'a log offset is a whole number of bytes, 0 or more');
    const state = await this.getRun(workflowId);
    const t = state.tasks[task];
    if (!t) {
      const known = Object.keys(state.tasks);
      throw new RunfleetError('NotFound', `no task "${task}" in run ${workflowId} (tasks: ${known.join(', ')})`);
    }
    const latest = Math.max(1, t.attempts);
    const wanted = attempt ?? latest;
    if (!Number.isInteger(wanted) || wanted < 1 || wanted > latest)
      throw new RunfleetError(
        'InvalidArgument',
        `task "${task}" has ${latest === 1 ? 'one attempt (1)' : `attempts 1-${latest}`}, not ${String(wanted)}`,
      );
    const runner = wanted === latest ? t.runner : (t.history?.find((h) => h.attempt === wanted)?.runner ?? null);
    // A lost task's runner went silent: what it shipped is all there is, unless it comes back.
    const final = wanted < latest || FINAL_TASK_STATUSES.includes(t.status) || t.status === 'lost';
    if (t.attempts === 0 || runner === null) {
      // Not started yet: no runner has a log.
      return {
        data: '',
        nextOffset: offset,
        exists: false,
        complete: FINAL_TASK_STATUSES.includes(t.status),
        taskStatus: t.status,
        runner: null,
        attempt: wanted,
      };
    }
    return this.call(workflowId, async () => {
      try {
        const input: FetchTaskLogInput = { runId: workflowId, task, runner, offset, limit, attempt: wanted, final };
        const chunk = await this.client.workflow.execute<(input: FetchTaskLogInput) => Promise<LogChunk>>(
          WORKFLOW_TYPES.fetchTaskLog,
          {
            taskQueue: this.controlTaskQueue,
            workflowId: `log/${workflowId}/${task}/${randomBytes(4).toString('hex')}`,
            args: [input],
            workflowExecutionTimeout: LOG_READ_TIMEOUT_MS,
          },
        );
        return { ...chunk, taskStatus: t.status, runner, attempt: wanted };
      } catch (err) {
        if (err instanceof WorkflowFailedError && err.cause instanceof TimeoutFailure) {
          throw new RunfleetError(
            'ComponentUnavailable',
            `no control worker answered the log request within ${LOG_READ_TIMEOUT_MS / 1000}s on task queue ${this.controlTaskQueue}: is \`runfleet worker\` running?`,
          );
        }
        throw err;
      }
    });
  }

  /**
   * A run's stored artifacts (one task's with `task`), each with a link that downloads its
   * archive from the object store for 15 minutes (`runArtifactsWorkflow` on the control queue).
   */
  async listArtifacts(ref: string, task?: string): Promise<ArtifactLink[]> {
    const workflowId = resolveRunWorkflowId(ref);
    const state = await this.getRun(workflowId);
    if (task !== undefined && !state.tasks[task]) {
      throw new RunfleetError(
        'NotFound',
        `no task "${task}" in run ${workflowId} (tasks: ${Object.keys(state.tasks).join(', ')})`,
      );
    }
    return this.call(workflowId, async () => {
      try {
        return await this.client.workflow.execute<(input: RunArtifactsInput) => Promise<ArtifactLink[]>>(
          WORKFLOW_TYPES.runArtifacts,
          {
            taskQueue: this.controlTaskQueue,
            workflowId: `artifacts/${workflowId}/${randomBytes(4).toString('hex')}`,
            args: [{ runId: workflowId, ...(task !== undefined ? { task } : {}) }],
            workflowExecutionTimeout: LOG_READ_TIMEOUT_MS,
          },
        );
      } catch (err) {
        if (err instanceof WorkflowFailedError && err.cause instanceof TimeoutFailure) {
          throw new RunfleetError(
            'ComponentUnavailable',
            `no control worker answered within ${LOG_READ_TIMEOUT_MS / 1000}s on task queue ${this.controlTaskQueue}: is \`runfleet worker\` running?`,
          );
        }
        throw err;
      }
    });
  }

  // --- changegroups -----------------------------------------------------------------------

  /**
   * A changegroup's version, limit, active and queued runs. A changegroup nobody has used yet
   * reads as version 0, no limit, no runs.
   */
  async getChangegroup(name: string): Promise<ChangegroupView> {
    checkChangegroupName(name);
    const workflowId = changegroupWorkflowId(name);
    return this.call(workflowId, async () => {
      try {
        const handle = this.client.workflow.getHandle<typeof changegroupWorkflow>(workflowId);
        return await this.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(changegroupQuery));
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return initialState(name);
        throw err;
      }
    });
  }

  /**
   * An update token over one or more changegroups: their versions now, in an opaque string.
   * Pass it to a mutating call (`submitRun`, `setChangegroupLimit`, `cancelRun`, `approveTask`);
   * when callers race with one token, one succeeds and the others get `Conflict`.
   */
  async getUpdateToken(changegroups: string[]): Promise<string> {
    const names = [...new Set(changegroups)];
    if (names.length === 0)
      throw new RunfleetError('InvalidArgument', 'an update token covers one changegroup or more');
    const views = await Promise.all(names.map((n) => this.getChangegroup(n)));
    return encodeUpdateToken(Object.fromEntries(views.map((v) => [v.name, v.version])));
  }

  /** Sets a changegroup's limit of active runs (null: none); a higher limit admits queued runs at once. */
  async setChangegroupLimit(name: string, limit: number | null, opts: TokenOptions = {}): Promise<ChangegroupView> {
    checkChangegroupName(name);
    const bad = limitProblem(limit);
    if (bad) throw new RunfleetError('InvalidArgument', bad);
    const expectedVersion = await this.checkOtherChangegroups(opts.token, name);
    return this.changegroupUpdate(name, setLimitUpdate, {
      limit,
      ...(expectedVersion === undefined ? {} : { expectedVersion }),
    });
  }

  /**
   * Checks a token and spends it: every changegroup of the token, in name order, checks its
   * version and bumps it (one update each), so of several callers with the same token only one
   * gets through. Atomic per changegroup only, since each is its own workflow: when a later
   * changegroup refuses (`Conflict`), the earlier ones have been bumped already, so tokens read
   * before over them get `Conflict` too (safe: a retry with a fresh token succeeds). The caller
   * acts after this returns; it is not undone if the action then fails.
   */
  async spendUpdateToken(token: string): Promise<void> {
    const versions = decodeUpdateToken(token);
    for (const name of Object.keys(versions).sort()) {
      await this.changegroupUpdate(name, checkTokenUpdate, { expectedVersion: versions[name] });
    }
  }

  /**
   * For a mutation of changegroup `name`: the version the token holds for it (checked by the
   * changegroup workflow, atomically with the mutation), after reading the token's other
   * changegroups (`Conflict` when one changed). Those are only read, not locked: one may change
   * right after. Undefined without a token.
   */
  private async checkOtherChangegroups(token: string | undefined, name: string): Promise<number | undefined> {
    if (token === undefined) return undefined;
    const versions = decodeUpdateToken(token);
    const expected = versions[name];
    if (expected === undefined) {
      throw new RunfleetError(
        'InvalidArgument',
        `the update token does not cover changegroup "${name}" (it covers ${Object.keys(versions).join(', ')})`,
      );
    }
    for (const [other, version] of Object.entries(versions)) {
      if (other === name) continue;
      const now = (await this.getChangegroup(other)).version;
      if (now !== version) {
        throw new RunfleetError(
          'Conflict',
          `changegroup "${other}" changed since the update token was read (token version ${version}, now ${now}); read a new token and try again`,
        );
      }
    }
    return expected;
  }

  /** One update of a changegroup's workflow, starting the workflow if it does not run yet. */
  private async changegroupUpdate<Ret, Arg>(
    name: string,
    update: UpdateDefinition<Ret, [Arg]>,
    arg: Arg,
  ): Promise<Ret> {
    const workflowId = changegroupWorkflowId(name);
    return this.call(workflowId, () =>
      this.client.workflow.executeUpdateWithStart(update, {
        args: [arg],
        startWorkflowOperation: new WithStartWorkflowOperation<typeof changegroupWorkflow>(CHANGEGROUP_WORKFLOW_TYPE, {
          workflowId,
          taskQueue: this.controlTaskQueue,
          args: [{ name }],
          // The changegroup is one entity: every caller talks to the one that runs.
          workflowIdConflictPolicy: 'USE_EXISTING',
        }),
      }),
    );
  }

  private runHandle(workflowId: string): WorkflowHandle<typeof runWorkflow> {
    return this.client.workflow.getHandle<typeof runWorkflow>(workflowId);
  }

  /** Runs a Temporal call and maps its errors into the Runfleet taxonomy. */
  private async call<T>(workflowId: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      const value = await fn();
      this.namespaceAnswered = true;
      return value;
    } catch (err) {
      throw toRunfleetError(err, {
        address: this.address,
        namespace: this.namespace,
        workflowId,
        namespaceAnswered: this.namespaceAnswered,
      });
    }
  }
}

/** The changegroup that admitted a run, from the memo the changegroup workflow gives it; undefined for a run started directly. */
function memoChangegroup(memo: Record<string, unknown> | undefined): string | undefined {
  const name = memo?.['changegroup'];
  return typeof name === 'string' && name.length > 0 ? name : undefined;
}

function isRunInput(value: unknown): value is { spec: unknown; options?: unknown } {
  return value !== null && typeof value === 'object' && 'spec' in value && !('tasks' in value);
}

/** A raw visibility record (gRPC) in the shape `runSummary` reads. */
function visibilityRecord(info: temporal.api.workflow.v1.IWorkflowExecutionInfo): VisibilityRecord {
  const searchAttributes: Record<string, Uint8Array | undefined> = {};
  for (const [k, v] of Object.entries(info.searchAttributes?.indexedFields ?? {}))
    searchAttributes[k] = v.data ?? undefined;
  return {
    workflowId: info.execution?.workflowId ?? '',
    status: temporal.api.enums.v1.WorkflowExecutionStatus[info.status ?? 0] ?? 'UNSPECIFIED',
    startTime: timestampIso(info.startTime),
    closeTime: timestampIso(info.closeTime),
    searchAttributes,
    memoName: info.memo?.fields?.['name']?.data ?? undefined,
  };
}

function noWorker(
  workflowId: string,
  description: WorkflowExecutionDescription,
  cause: unknown,
  taskQueue: string,
): RunfleetError {
  const status = description.status.name.toLowerCase();
  const why = (cause instanceof Error ? cause.message : String(cause)) + grpcStatus(cause);
  // Nobody answered in time (no worker, a service recovering): a watcher asks again. A worker that
  // answered with a failure is an answer.
  return new RunfleetError(
    isTransient(cause) ? 'NoAnswer' : 'ComponentUnavailable',
    `run ${workflowId} (${status}) did not answer its state query; is a control worker (\`runfleet worker\`) serving ${taskQueue}? ${why}`,
  );
}
