/**
 * The runner registry from the outside: what the CLI (`runfleet runner create|token|list|...`)
 * and the runner agent call. A thin, typed layer over the `runner/<name>` workflows: inputs are
 * checked before anything is sent, and Temporal errors come back as RunfleetErrors with a code.
 *
 * ```ts
 * const admin = new RunnerAdmin(client, { controlTaskQueue: 'runfleet-control', operatorKey: seed });
 * const { token } = await admin.create({ name: 'build-1', pool: 'linux' });
 * ```
 *
 * Admission is the operator's: token grants and purge, settings, enable and disable are signed
 * with the operator key (`operatorKey`, the seed from `runfleet operator-key create`); without
 * it those calls fail with `Unauthorized` before anything is sent.
 */
import {
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import type { temporal } from '@temporalio/proto';
import { randomBytes } from 'node:crypto';
import { RunfleetError } from '../errors';
import { signStatement } from '../security/operator';
import { operatorCommand, type OperatorAction } from '../security/statements';
import { WORKFLOW_TYPES, runnerWorkflowId } from '../ids';
import * as st from '../registry/state';
import { createRegistrationToken, tokenGrant } from '../registry/token';
import type { runnerWorkflow } from '../../workflows/runner';
import {
  RUNNER_STATUSES,
  configureUpdate,
  connectUpdate,
  disableUpdate,
  enableUpdate,
  issueTokenUpdate,
  pingUpdate,
  purgeUpdate,
  recordQuery,
  registerUpdate,
  revokeTokenUpdate,
  type ConnectRequest,
  type OperatorSignature,
  type IssueTokenRequest,
  type PingReply,
  type RegisterRequest,
  type RegistrationGrant,
  type RunnerLiveStatus,
  type RunnerRecord,
  type RunnerSettings,
  type RunnerStatus,
  type RunnerWorkflowInput,
} from '../../workflows/runner-messages';
import type { AdmitRunnerRequest } from '../registry/types';
import { checkRunnerName, parseLabels } from '../registry/names';

export { checkRunnerName, parseLabels };
import { toRunfleetError } from './errors';
import { timestampIso } from './timestamps';

export interface RunnerAdminOptions {
  /** Task queue of the control worker, where the registry workflows run. */
  controlTaskQueue: string;
  /** Named in ServerUnreachable messages. */
  address?: string;
  /**
   * base64 seed of the operator signing key (`readOperatorKeyFile(config.operator.keyFile)`):
   * signs token grants and runner commands. Without it, those calls are `Unauthorized`.
   */
  operatorKey?: string | null;
}

export interface CreateRunnerRequest {
  name: string;
  pool: string;
  labels?: Record<string, string>;
  /** A temporary runner is purged once it is lost (it will not come back). Default false. */
  temporary?: boolean;
  settings?: Partial<RunnerSettings>;
  /** How long the registration token is valid. Default 1 h. */
  tokenTtlMs?: number;
  /** Who asks (recorded in the runner's history). */
  by?: string;
}

export type { AdmitRunnerRequest };

export interface IssuedToken {
  /** The token in clear: shown once, never stored anywhere. */
  token: string;
  tokenId: string;
  expiresAt: string;
  record: RunnerRecord;
}

export interface AdminOptions {
  by?: string;
  reason?: string;
}

/** The session the registry keeps on the runner, as the server sees it. */
export interface SessionInfo {
  generation: number;
  /** `scheduled` (waiting for the runner), `started` (the runner holds it), `cancel-requested`. */
  state: string;
  startedAt: string | null;
  lastHeartbeatAt: string | null;
  /** What the runner reported with its last heartbeat. */
  live: RunnerLiveStatus | null;
}

export interface RunnerView {
  record: RunnerRecord;
  /** The runner's status from its session's last heartbeat; null while it holds no session. */
  live: RunnerLiveStatus | null;
  session: SessionInfo | null;
  /** Temporal's execution status of the registry workflow (`RUNNING`, `COMPLETED` once purged). */
  execution: string;
}

export interface ListRunnersFilter {
  pool?: string;
  status?: RunnerStatus;
  /** Registry workflows per visibility page. Default 50. */
  limit?: number;
  pageToken?: string;
}

export interface RunnerSummary {
  name: string;
  pool: string;
  status: RunnerStatus;
  enabled: boolean;
  lastSeenAt: string | null;
  version: string | null;
  /** Tasks running now (from the live status); null when unknown. */
  running: number | null;
  slots: number;
  free: number | null;
}

export interface RunnerPage {
  runners: RunnerSummary[];
  nextPageToken: string | null;
}

export interface PurgeResult {
  /** The record when the purge was accepted. */
  record: RunnerRecord;
  /** The final record, once the workflow ended (the runner confirmed or the wait ran out); null if not seen in time. */
  final: RunnerRecord | null;
}

/** A token is valid for an hour unless told otherwise: long enough to install a machine. */
export const DEFAULT_TOKEN_TTL_MS = 3_600_000;
/** At most a week: a token is a key to the fleet's data keys. */
export const MAX_TOKEN_TTL_MS = 7 * 86_400_000;
/** Queries answer from a worker: seconds unless no control worker is up. */
const QUERY_DEADLINE_MS = 10_000;
/** A purge waits this long for the runner to wipe itself (the workflow waits 30 s). */
const PURGE_WAIT_MS = 35_000;
const DEFAULT_LIST_LIMIT = 50;
const STARTED = 2; // PENDING_ACTIVITY_STATE_STARTED
const CANCEL_REQUESTED = 3; // PENDING_ACTIVITY_STATE_CANCEL_REQUESTED

export class RunnerAdmin {
  readonly client: Client;
  readonly controlTaskQueue: string;
  private readonly address: string;
  private readonly operatorKey: string | null;

  constructor(client: Client, opts: RunnerAdminOptions) {
    this.client = client;
    this.controlTaskQueue = opts.controlTaskQueue;
    this.address = opts.address ?? '(unknown address)';
    this.operatorKey = opts.operatorKey ?? null;
  }

  /** The operator key, or `Unauthorized` naming where it comes from. */
  private operatorSeed(what: string): string {
    if (this.operatorKey) return this.operatorKey;
    throw new RunfleetError(
      'Unauthorized',
      `${what} needs the operator signing key, and there is none here: create it with \`runfleet operator-key create\` (or point operator.keyFile / RUNFLEET_OPERATOR_KEY_FILE at it)`,
    );
  }

  /** A token and the operator's grant for it, for the runner as its record will be. */
  private grantToken(
    runner: { name: string; pool: string; labels?: Record<string, string>; temporary?: boolean; slots: number },
    token: { id: string; publicKey: string },
    ttlMs: number | null,
    expiresAt?: string,
  ): IssueTokenRequest & { by: string } {
    const seed = this.operatorSeed(`a token for runner ${runner.name}`);
    const issuedAt = new Date().toISOString();
    const expires = expiresAt ?? new Date(Date.parse(issuedAt) + (ttlMs ?? DEFAULT_TOKEN_TTL_MS)).toISOString();
    const grant = tokenGrant(
      {
        name: runner.name,
        pool: runner.pool,
        labels: runner.labels ?? {},
        temporary: runner.temporary === true,
        slots: runner.slots,
      },
      token,
      issuedAt,
      expires,
    );
    return { tokenId: token.id, expiresAt: expires, grant, signature: signStatement(seed, grant), by: '' };
  }

  /** An operator command's argument with its signature. */
  private signed<T extends object>(name: string, action: OperatorAction, args: T): T & { operator: OperatorSignature } {
    const seed = this.operatorSeed(`runner ${action}`);
    const sig = { at: new Date().toISOString(), nonce: randomBytes(16).toString('hex'), signature: '' };
    sig.signature = signStatement(seed, operatorCommand(name, action, args, sig));
    return { ...args, operator: sig };
  }

  /**
   * Creates a runner (or gives one not registered yet a new token) and returns its registration
   * token, in clear only here. A runner that exists and has registered: `Conflict`.
   */
  async create(req: CreateRunnerRequest): Promise<IssuedToken> {
    checkRunnerName(req.name);
    const poolBad = st.poolProblem(req.pool);
    if (poolBad) throw new RunfleetError('InvalidArgument', `--pool: ${poolBad}`);
    for (const [k, v] of Object.entries(req.labels ?? {})) {
      const bad = st.labelProblem(k, v);
      if (bad) throw new RunfleetError('InvalidArgument', `--label: ${bad}`);
    }
    if (req.settings) {
      const s = st.applySettings(st.DEFAULT_SETTINGS, req.settings);
      if (!s.ok) throw new RunfleetError('InvalidArgument', s.problem);
    }
    const ttl = checkTtl(req.tokenTtlMs);
    const existing = await this.findRecord(req.name);
    if (existing && existing.identity !== null && existing.status !== 'deleted') {
      throw new RunfleetError(
        'Conflict',
        `runner ${req.name} exists and has registered (status ${existing.status}); for a new token run \`runfleet runner token ${req.name}\``,
      );
    }
    const input: RunnerWorkflowInput = {
      name: req.name,
      pool: req.pool,
      ...(req.labels && Object.keys(req.labels).length > 0 ? { labels: req.labels } : {}),
      ...(req.temporary ? { temporary: true } : {}),
      ...(req.settings ? { settings: req.settings } : {}),
    };
    const t = createRegistrationToken();
    // A runner created before and not registered yet keeps its record: the grant is for it as it is.
    const as = existing && existing.status !== 'deleted' ? existing : null;
    const issue = this.grantToken(
      {
        name: req.name,
        pool: as?.pool ?? req.pool,
        labels: as?.labels ?? req.labels ?? {},
        temporary: as?.temporary ?? req.temporary === true,
        slots: as?.settings.slots ?? slotsOf(req.settings),
      },
      t,
      ttl,
    );
    const record = await this.startWithToken(input, { ...issue, by: by(req.by) });
    return { token: t.token, tokenId: t.id, expiresAt: issue.expiresAt, record };
  }

  /**
   * Creates the temporary runner of one EC2 fleet instance, to be registered with the fleet's
   * token: only the token's id, hash and expiry come here (the fleet minted it; its clear text
   * is in the instance's user data). Idempotent: a second call for the same instance answers
   * with the runner as it is, registered or not.
   */
  async admit(req: AdmitRunnerRequest): Promise<RunnerRecord> {
    checkRunnerName(req.name);
    const bad =
      st.poolProblem(req.pool) ??
      st.inputProblem({
        name: req.name,
        pool: req.pool,
        fleet: req.fleet,
        ...(req.settings ? { settings: req.settings } : {}),
      });
    if (bad) throw new RunfleetError('InvalidArgument', bad);
    const existing = await this.findRecord(req.name);
    if (existing && existing.status !== 'deleted') {
      if (existing.fleet?.instanceId !== req.fleet.instanceId)
        throw new RunfleetError(
          'Conflict',
          `runner ${req.name} exists and is not the runner of ${req.fleet.instanceId}`,
        );
      if (existing.identity !== null || existing.token?.id === req.token.id) return existing;
    }
    const input: RunnerWorkflowInput = {
      name: req.name,
      pool: req.pool,
      ...(req.labels && Object.keys(req.labels).length > 0 ? { labels: req.labels } : {}),
      temporary: true,
      fleet: { name: req.fleet.name, instanceId: req.fleet.instanceId },
      ...(req.settings ? { settings: req.settings } : {}),
    };
    const as = existing && existing.status !== 'deleted' ? existing : null;
    const issue = this.grantToken(
      {
        name: req.name,
        pool: as?.pool ?? req.pool,
        labels: as?.labels ?? req.labels ?? {},
        temporary: true,
        slots: as?.settings.slots ?? slotsOf(req.settings),
      },
      req.token,
      null,
      req.token.expiresAt,
    );
    return this.startWithToken(input, { ...issue, by: by(req.by) });
  }

  private startWithToken(input: RunnerWorkflowInput, token: IssueTokenRequest): Promise<RunnerRecord> {
    return this.call(input.name, () =>
      this.client.workflow.executeUpdateWithStart(issueTokenUpdate, {
        args: [token],
        startWorkflowOperation: new WithStartWorkflowOperation<typeof runnerWorkflow>(WORKFLOW_TYPES.runner, {
          workflowId: runnerWorkflowId(input.name),
          taskQueue: this.controlTaskQueue,
          args: [input],
          // One workflow per runner: a second `create` talks to the one that runs. A purged
          // runner's workflow has completed, so the name can be created again (ALLOW_DUPLICATE).
          workflowIdConflictPolicy: 'USE_EXISTING',
          workflowIdReusePolicy: 'ALLOW_DUPLICATE',
          memo: { pool: input.pool },
        }),
      }),
    );
  }

  /** A new registration token for an existing runner; the previous one is dead from now on. */
  async issueToken(name: string, opts: { ttlMs?: number; by?: string } = {}): Promise<IssuedToken> {
    checkRunnerName(name);
    const ttl = checkTtl(opts.ttlMs);
    this.operatorSeed(`a token for runner ${name}`);
    const current = await this.get(name);
    const t = createRegistrationToken();
    const issue = this.grantToken({ ...current, slots: current.settings.slots }, t, ttl);
    const record = await this.update(name, issueTokenUpdate, { ...issue, by: by(opts.by) });
    return { token: t.token, tokenId: t.id, expiresAt: issue.expiresAt, record };
  }

  async revokeToken(name: string, opts: AdminOptions = {}): Promise<RunnerRecord> {
    return this.update(name, revokeTokenUpdate, admin(opts));
  }

  /** The runner's first start: its token and identity. Refused with `TokenRejected`. */
  async register(name: string, req: RegisterRequest): Promise<RegistrationGrant> {
    return this.update(name, registerUpdate, req);
  }

  /** Every later start of a registered runner. */
  async connect(name: string, req: ConnectRequest): Promise<RegistrationGrant> {
    return this.update(name, connectUpdate, req);
  }

  async enable(name: string, opts: AdminOptions = {}): Promise<RunnerRecord> {
    return this.update(name, enableUpdate, this.signed(name, 'enable', admin(opts)));
  }

  /** The runner stops taking work and finishes what runs (it drains). */
  async disable(name: string, opts: AdminOptions = {}): Promise<RunnerRecord> {
    return this.update(name, disableUpdate, this.signed(name, 'disable', admin(opts)));
  }

  /** Changes settings (validated, naming the bad key); the runner gets them with its next session. */
  async settings(name: string, patch: Partial<RunnerSettings>, opts: AdminOptions = {}): Promise<RunnerRecord> {
    const s = st.applySettings(st.DEFAULT_SETTINGS, patch);
    // The full check (against the current settings) is the workflow's; this catches unknown keys early.
    if (!s.ok && !/must be at most a third/.test(s.problem)) throw new RunfleetError('InvalidArgument', s.problem);
    return this.update(name, configureUpdate, this.signed(name, 'configure', { ...patch, ...admin(opts) }));
  }

  /** Asks the runner for its status; `ComponentUnavailable` when it does not answer in 10 s. */
  async ping(name: string): Promise<PingReply> {
    return this.update(name, pingUpdate);
  }

  /**
   * Removes the runner: runs with tasks lost on it are told, a connected runner wipes itself and
   * exits. Waits up to `waitMs` (default 35 s) for the registry workflow to finish.
   */
  async purge(name: string, opts: AdminOptions & { waitMs?: number } = {}): Promise<PurgeResult> {
    const record = await this.update(name, purgeUpdate, this.signed(name, 'purge', admin(opts)));
    const waitMs = opts.waitMs ?? PURGE_WAIT_MS;
    if (waitMs <= 0) return { record, final: null };
    try {
      const final = await this.client.withDeadline(Date.now() + waitMs, () => this.handle(name).result());
      return { record, final };
    } catch {
      return { record, final: null };
    }
  }

  /** The record (a purged runner's final one). `NotFound` when there is no such runner. */
  async get(name: string): Promise<RunnerRecord> {
    const record = await this.findRecord(name);
    if (!record) throw notFound(name);
    return record;
  }

  /** The record with the live status of the runner's session (heartbeat details), as the server holds it. */
  async describe(name: string): Promise<RunnerView> {
    checkRunnerName(name);
    return this.call(name, async () => {
      const handle = this.handle(name);
      const description = await handle.describe();
      const execution = description.status.name;
      const record =
        execution === 'RUNNING'
          ? await this.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(recordQuery))
          : execution === 'COMPLETED'
            ? await handle.result()
            : null;
      if (!record) throw notFound(name);
      const sessions = await this.sessionsOf(description.raw.pendingActivities);
      // The live status is the newest heartbeat of a session the runner holds.
      const session = sessions[0] ?? null;
      const held = sessions.find((s) => s.state !== 'scheduled' && s.live !== null);
      return { record, live: held?.live ?? null, session, execution };
    });
  }

  /** The registry's sessions on the runner, newest first (see `sessionsOf`). */
  async sessions(name: string): Promise<SessionInfo[]> {
    checkRunnerName(name);
    return this.call(name, async () => {
      const description = await this.handle(name).describe();
      return this.sessionsOf(description.raw.pendingActivities);
    });
  }

  /**
   * One page of runners from visibility (registry workflows on this control queue), each with
   * its record and live status. The pool and status filters apply to the page's runners, so a
   * filtered page may hold fewer than `limit`. Purged runners are listed with `status: 'deleted'`.
   */
  async list(filter: ListRunnersFilter = {}): Promise<RunnerPage> {
    if (filter.pool !== undefined) {
      const bad = st.poolProblem(filter.pool);
      if (bad) throw new RunfleetError('InvalidArgument', `--pool: ${bad}`);
    }
    if (filter.status !== undefined && !RUNNER_STATUSES.includes(filter.status))
      throw new RunfleetError(
        'InvalidArgument',
        `--status: "${filter.status}" is not one of ${RUNNER_STATUSES.join(', ')}`,
      );
    const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new RunfleetError('InvalidArgument', '--limit: a whole number from 1 to 1000');
    const clauses = [
      `WorkflowType = '${WORKFLOW_TYPES.runner}'`,
      `TaskQueue = '${this.controlTaskQueue.replace(/'/g, "\\'")}'`,
      // A purged runner's workflow has completed; every other runner's runs.
      filter.status === 'deleted' ? `ExecutionStatus = 'Completed'` : `ExecutionStatus = 'Running'`,
    ];
    return this.call(undefined, async () => {
      const page = await this.client.workflowService.listWorkflowExecutions({
        namespace: this.client.options.namespace,
        query: clauses.join(' AND '),
        pageSize: limit,
        nextPageToken: filter.pageToken ? Buffer.from(filter.pageToken, 'base64url') : undefined,
      });
      const names = (page.executions ?? [])
        .map((e) => e.execution?.workflowId ?? '')
        .filter((id) => id.startsWith('runner/'))
        .map((id) => id.slice('runner/'.length));
      const views = await Promise.all(names.map((n) => this.describe(n).catch(() => null)));
      const runners = views
        .filter((v): v is RunnerView => v !== null)
        .filter((v) => filter.pool === undefined || v.record.pool === filter.pool)
        .filter((v) => filter.status === undefined || v.record.status === filter.status)
        .map(summary);
      const token =
        page.nextPageToken && page.nextPageToken.length > 0
          ? Buffer.from(page.nextPageToken).toString('base64url')
          : null;
      return { runners, nextPageToken: token };
    });
  }

  private handle(name: string): WorkflowHandle<typeof runnerWorkflow> {
    return this.client.workflow.getHandle<typeof runnerWorkflow>(runnerWorkflowId(name));
  }

  /** The record, or null when the runner does not exist. */
  private async findRecord(name: string): Promise<RunnerRecord | null> {
    checkRunnerName(name);
    try {
      return (await this.describe(name)).record;
    } catch (err) {
      if (err instanceof RunfleetError && err.code === 'NotFound') return null;
      throw err;
    }
  }

  /**
   * The registry's sessions on the runner, newest generation first, from the server's pending
   * activities: the current one, and for a moment a cancelled one the runner has not seen end yet.
   */
  private async sessionsOf(
    pending: temporal.api.workflow.v1.IPendingActivityInfo[] | null | undefined,
  ): Promise<SessionInfo[]> {
    const sessions = await Promise.all(
      (pending ?? []).filter((a) => a.activityType?.name === 'runnerSession').map((a) => this.sessionInfo(a)),
    );
    return sessions.sort((a, b) => b.generation - a.generation);
  }

  private async sessionInfo(activity: temporal.api.workflow.v1.IPendingActivityInfo): Promise<SessionInfo> {
    const generation = Number(/^session\/(\d+)$/.exec(activity.activityId ?? '')?.[1] ?? -1);
    let live: RunnerLiveStatus | null = null;
    const payloads = activity.heartbeatDetails?.payloads;
    if (payloads && payloads.length > 0) {
      try {
        live = await decodeFromPayloadsAtIndex<RunnerLiveStatus>(this.client.options.loadedDataConverter, 0, payloads);
      } catch {
        live = null; // details this client cannot decode (another codec): the record is still shown
      }
    }
    return {
      generation,
      state:
        activity.state === STARTED ? 'started' : activity.state === CANCEL_REQUESTED ? 'cancel-requested' : 'scheduled',
      startedAt: timestampIso(activity.lastStartedTime),
      lastHeartbeatAt: timestampIso(activity.lastHeartbeatTime),
      live,
    };
  }

  /** One update of the runner's workflow (which must exist: only `create` starts one). */
  private async update<Ret>(name: string, def: UpdateDefinition<Ret, []>): Promise<Ret>;
  private async update<Ret, Arg>(name: string, def: UpdateDefinition<Ret, [Arg]>, arg: Arg): Promise<Ret>;
  private async update<Ret, Arg>(
    name: string,
    def: UpdateDefinition<Ret, [Arg]> | UpdateDefinition<Ret, []>,
    ...arg: [Arg] | []
  ): Promise<Ret> {
    checkRunnerName(name);
    return this.call(name, () =>
      arg.length === 0
        ? this.handle(name).executeUpdate(def as UpdateDefinition<Ret, []>)
        : this.handle(name).executeUpdate(def as UpdateDefinition<Ret, [Arg]>, { args: arg as [Arg] }),
    );
  }

  private async call<T>(name: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError && name !== undefined) throw notFound(name);
      const mapped = toRunfleetError(err, {
        address: this.address,
        namespace: this.client.options.namespace,
        workflowId: name === undefined ? undefined : runnerWorkflowId(name),
      });
      if (
        mapped instanceof RunfleetError &&
        mapped.code === 'NotFound' &&
        name !== undefined &&
        /^no run /.test(mapped.message)
      )
        throw notFound(name);
      throw mapped;
    }
  }
}

function summary(v: RunnerView): RunnerSummary {
  return {
    name: v.record.name,
    pool: v.record.pool,
    status: v.record.status,
    enabled: v.record.enabled,
    lastSeenAt: v.session?.lastHeartbeatAt ?? v.record.lastSeenAt,
    version: v.live?.version ?? v.record.identity?.version ?? null,
    running: v.live ? v.live.running.length : null,
    slots: v.live?.slots ?? v.record.settings.slots,
    free: v.live?.free ?? null,
  };
}

/** The slots a runner created with these settings gets. */
function slotsOf(settings: Partial<RunnerSettings> | undefined): number {
  return settings?.slots ?? st.DEFAULT_SETTINGS.slots;
}

function checkTtl(ttlMs: number | undefined): number {
  const ttl = ttlMs ?? DEFAULT_TOKEN_TTL_MS;
  if (!Number.isFinite(ttl) || ttl < 1_000 || ttl > MAX_TOKEN_TTL_MS)
    throw new RunfleetError('InvalidArgument', '--token-ttl: a duration from 1s to 7d, like 1h');
  return ttl;
}

function notFound(name: string): RunfleetError {
  return new RunfleetError('NotFound', `no runner ${name} (runfleet runner list)`);
}

function by(who: string | undefined): string {
  return who?.trim() || 'unknown';
}

function admin(opts: AdminOptions): { by: string; reason?: string } {
  return opts.reason?.trim() ? { by: by(opts.by), reason: opts.reason.trim() } : { by: by(opts.by) };
}
