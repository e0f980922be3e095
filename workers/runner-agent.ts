/**
 * The lifecycle of a registered runner process (the "agent"):
 *
 *   start:  identity (made on first start) -> connect and register (token) or reconnect (id),
 *           retrying with capped backoff; nothing runs before the fleet accepts the runner
 *        -> open the sealed data keys -> recover tasks an earlier process left (re-attach, or
 *           report how they ended) -> log the runner's scheduled runs -> serve.
 *   serve:  the registry session (enable, disable, settings, delete); pings to the server every
 *           `pingMs`; no answer for `watchdogMs` -> the connection is restarted and the runner is
 *           idle until it is back (tasks keep running, their outcomes are reported later);
 *           a periodic stale-session sweep. A task that ends while the server is not answering
 *           may have its completion refused once the server is back (its activity timed out
 *           meanwhile): the run then calls it lost and asks this runner (`lookupTask`), which
 *           answers from the outcome it kept (`<key>.done`, see src/runner/sessions.ts).
 *   stop:   the stop signal ends the lifecycle: workers drain for their grace time; tasks still
 *           running then go on and are found by the next start.
 *   delete: the fleet purged the runner: it wipes its state directory and ends (exit 0).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { rmSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { NativeConnection } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { openKeys } from '../src/codec/seal';
import type { KeyRing } from '../src/codec/keys';
import { RunfleetError } from '../src/errors';
import { backoff } from '../src/backoff';
import { sleep } from '../src/sleep';
import type { LogFields } from '../src/logging';
import { runnerWorkflowId } from '../src/ids';
import { RunnerAdmin } from '../src/client/runners';
import type { DriverName, RunState, TaskOutcome } from '../src/types';
import { runEnvQuery, stateQuery, taskReportSignal } from '../workflows/run-messages';
import {
  connectUpdate,
  recordQuery,
  registerUpdate,
  sessionOnlineSignal,
  type RegistrationGrant,
  type RunnerSettings,
} from '../workflows/runner-messages';
import { createRunner, type Runner, type RunnerOptions } from './runner';
import type { Tracing } from '../src/tracing';
import type { Driver, TaskLabels } from '../src/runner/driver';
import { loadOrCreateIdentity, saveIdentity, type RunnerIdentity } from '../src/runner/identity';
import { createRunnerSigner, type RunnerSigner } from '../src/security/runner-signer';
import { registrationProof } from '../src/registry/token';

export type AgentState =
  'connecting' | 'registering' | 'recovering' | 'ready' | 'disabled' | 'idle' | 'stopping' | 'deleted';

export interface Connected {
  connection: NativeConnection;
  client: Client;
  close(): Promise<void>;
}

export interface AgentOptions {
  /** Spans of the runner's task executions (`startTracing`). Default: none. */
  tracing?: Tracing | null;
  name: string;
  pool: string;
  address: string;
  namespace: string;
  stateDir: string;
  /** Registration token (first start only). */
  token?: string;
  version: string;
  drivers: Partial<Record<DriverName, Driver>>;
  keys: KeyRing;
  dataConverter: DataConverter;
  /**
   * Serve even when the fleet delivers no data keys (its control workers run without keys), so
   * tasks travel in clear: development only (`encryption.allowPlaintext`). Default: refuse.
   */
  allowPlaintext?: boolean;
  /** Opens a worker connection and a client (TLS and API key as configured). */
  connect(): Promise<Connected>;
  passEnv: Record<string, string>;
  logRetentionMs: number;
  /** The object store of task logs, artifacts and caches (`RunnerOptions.objectStore`). Default: none. */
  objectStore?: RunnerOptions['objectStore'];
  log(line: string, fields?: LogFields): void;
  stopSignal: AbortSignal;
  /** At most this many tasks at once, whatever the fleet says (a small machine). */
  slotsCap?: number;
  /** Longest wait between connection or registration attempts. Default 30 s. */
  maxRetryMs?: number;
  /** How often leftovers are looked for while serving (records, orphan tasks, purged runners'). Default 5 min. */
  staleSweepMs?: number;
  /** Time running tasks get to finish when the runner stops. Default 10 s. */
  shutdownGraceMs?: number;
  /** The control task queue (the registry's): to find purged runners of the pool whose leftovers to clean. */
  controlTaskQueue?: string;
  /** Prints the runner's scheduled runs at start (best effort). */
  describeSchedules?(client: Client): Promise<string[]>;
}

/** How often stale sessions are looked for while serving. */
const STALE_SWEEP_MS = 5 * 60_000;
/** The client's default retries of one call take ~15 s in all (10 attempts, backoff up to 5 s). */
const OLD_CONNECTION_CLOSE_MS = 30_000;
export class RunnerAgent {
  private state: AgentState = 'connecting';
  private reason = 'starting';
  private runner: Runner | null = null;
  private identity: RunnerIdentity | null = null;
  /** Signs what this runner tells runs, with its identity signing key (made with the identity). */
  private signer: RunnerSigner | null = null;
  /**
   * The client of the current connection, null while (re)joining. Outcomes of tasks that outlive
   * a connection are reported through it: the connection they started on is closed by then.
   */
  private client: Client | null = null;
  /** When the server last answered a ping. */
  private lastAnswer = Date.now();

  constructor(private readonly opts: AgentOptions) {}
  private readonly bootId = randomUUID();
  /** Session keys this process runs or reports: shared by every connection's workers. */
  private readonly claimed = new Set<string>();

  readiness(): { ready: boolean; reason: string; state: AgentState } {
    if (this.state !== 'ready') return { ready: false, reason: this.reason, state: this.state };
    const r = this.runner?.readiness() ?? { ready: false, reason: 'no workers' };
    return { ...r, state: this.state };
  }

  /** Runs until stopped (`stopped`) or purged by the fleet (`deleted`, after wiping the state directory). */
  async run(): Promise<'stopped' | 'deleted'> {
    const { opts } = this;
    this.identity = loadOrCreateIdentity(opts.stateDir);
    this.signer = createRunnerSigner(this.identity.signingSeed);
    while (!opts.stopSignal.aborted) {
      const joined = await this.join();
      if (!joined) break;
      if (joined === 'purged') return this.wipe('purged from the fleet while it was away');
      const { conn, grant } = joined;
      const outcome = await this.serve(conn, grant);
      if (outcome === 'lost') {
        // Calls still in flight on the old client (a report, a check) are retried for ~15 s, and
        // a retry into a closed channel throws from a timer, which would end the process: close
        // the old connection once they are over.
        setTimeout(() => void conn.close().catch(() => undefined), OLD_CONNECTION_CLOSE_MS).unref();
      } else {
        await conn.close().catch(() => undefined);
      }
      if (outcome === 'deleted') return this.wipe('purged by the fleet');
      if (outcome === 'stopped') break;
      // 'lost': the watchdog gave up on this connection; join again.
    }
    this.set('stopping', 'stopping');
    return 'stopped';
  }

  /** The fleet purged this runner: its state directory (identity, keys, records, logs) goes. */
  private wipe(reason: string): 'deleted' {
    this.set('deleted', reason);
    rmSync(this.opts.stateDir, { recursive: true, force: true });
    this.opts.log(`runner ${this.opts.name} was purged from the fleet: removed ${this.opts.stateDir}`);
    return 'deleted';
  }

  /**
   * Whether the registry's record says this runner (this identity) was purged: asked when a
   * registered runner's `connect` is refused, so one purged while it was offline (its last
   * session never taken) still wipes itself. The record of a completed registry workflow is
   * still there to query until the namespace's retention ends; a runner of the same name
   * created again since is another identity, and this one is not told it was purged.
   */
  private async purgedWhileAway(client: Client, identity: RunnerIdentity): Promise<boolean> {
    try {
      const record = await client.workflow.getHandle(runnerWorkflowId(this.opts.name)).query(recordQuery);
      return record.status === 'deleted' && record.identity?.runnerId === identity.runnerId;
    } catch {
      return false;
    }
  }

  /** Cleans up after runners of the pool that the fleet purged (temporary runners once gone). */
  private async sweepGone(client: Client, runner: Runner, pool: string): Promise<void> {
    if (!this.opts.controlTaskQueue) return;
    try {
      const admin = new RunnerAdmin(client, { controlTaskQueue: this.opts.controlTaskQueue });
      const page = await admin.list({ pool, status: 'deleted', limit: 100 });
      await runner.sweepGone(page.runners.map((r) => r.name));
    } catch (err) {
      this.opts.log(`could not look for purged runners of pool ${pool}: ${firstLine(err)}`);
    }
  }

  private slots(settings: RunnerSettings): number {
    return Math.min(settings.slots, this.opts.slotsCap ?? settings.slots);
  }

  private set(state: AgentState, reason: string): void {
    this.state = state;
    this.reason = reason;
  }

  /** Connects and registers (or reconnects), retrying until accepted or stopped. */
  private async join(): Promise<{ conn: Connected; grant: RegistrationGrant } | 'purged' | null> {
    const { opts } = this;
    const identity = this.identity as RunnerIdentity;
    const wasServing = this.state === 'idle';
    const retries = backoff({ initialMs: 1_000, maxMs: opts.maxRetryMs ?? 30_000, signal: opts.stopSignal });
    for await (const { delayMs } of retries) {
      const wait = `retrying in ${Math.round(delayMs / 1000)}s`;
      let conn: Connected;
      try {
        this.set(wasServing ? 'idle' : 'connecting', `connecting to Temporal at ${opts.address}`);
        conn = await opts.connect();
      } catch (err) {
        this.set(wasServing ? 'idle' : 'connecting', `server unreachable at ${opts.address}`);
        opts.log(`server unreachable at ${opts.address} (${firstLine(err)}); ${wait}`);
        continue;
      }
      try {
        this.set('registering', identity.registered ? 'reconnecting to the fleet' : 'registering');
        const grant = await this.register(conn.client, identity);
        if (!identity.registered) {
          identity.registered = { name: opts.name, at: new Date().toISOString() };
          saveIdentity(opts.stateDir, identity);
          opts.log(`runner ${opts.name} registered with the fleet (id ${identity.runnerId})`);
        }
        return { conn, grant };
      } catch (err) {
        const refused = rejection(err) !== null || err instanceof WorkflowNotFoundError || isNotFound(err);
        const purged = refused && identity.registered && (await this.purgedWhileAway(conn.client, identity));
        await conn.close().catch(() => undefined);
        if (purged) return 'purged';
        const rejected = rejection(err);
        if (rejected !== null) {
          this.set('registering', `token rejected: ${rejected}`);
          opts.log(`token rejected: ${rejected}; ${wait}`);
        } else if (err instanceof WorkflowNotFoundError || isNotFound(err)) {
          this.set('registering', `no runner ${opts.name} in the fleet`);
          opts.log(
            `token rejected: the fleet has no runner "${opts.name}" in namespace ${opts.namespace} (create it with \`runfleet runner create ${opts.name}\`); ${wait}`,
          );
        } else {
          this.set('connecting', `server unreachable at ${opts.address}`);
          opts.log(`server unreachable at ${opts.address} (${firstLine(err)}); ${wait}`);
        }
      }
    }
    return null;
  }

  private async register(client: Client, identity: RunnerIdentity): Promise<RegistrationGrant> {
    const { opts } = this;
    const handle = client.workflow.getHandle(runnerWorkflowId(opts.name));
    const drivers = Object.keys(opts.drivers) as DriverName[];
    if (identity.registered) {
      return handle.executeUpdate(connectUpdate, {
        args: [
          { runnerId: identity.runnerId, version: opts.version, drivers, hostname: hostname(), bootId: this.bootId },
        ],
      });
    }
    if (!opts.token) {
      throw ApplicationFailure.create({
        type: 'TokenRejected',
        message: `runner ${opts.name} is not registered and has no token: \`runfleet runner create ${opts.name}\` prints one (pass it with --token or RUNFLEET_RUNNER_TOKEN)`,
      });
    }
    // The token signs this identity; the token itself stays on this host (never in history).
    const proof = registrationProof(opts.token, {
      name: opts.name,
      runnerId: identity.runnerId,
      publicKey: identity.publicKey,
      signingKey: identity.signingKey,
    });
    return handle.executeUpdate(registerUpdate, {
      args: [
        {
          ...proof,
          runnerId: identity.runnerId,
          publicKey: identity.publicKey,
          version: opts.version,
          drivers,
          hostname: hostname(),
        },
      ],
    });
  }

  /** Serves until stopped, purged, or the watchdog gives up on the connection. */
  private async serve(conn: Connected, grant: RegistrationGrant): Promise<'stopped' | 'deleted' | 'lost'> {
    const { opts } = this;
    const identity = this.identity as RunnerIdentity;
    opts.keys.set(openKeys(identity.privateKey, grant.keys));
    if (grant.keys.length === 0 && !opts.allowPlaintext)
      throw new RunfleetError(
        'InvalidConfig',
        'the fleet delivered no data keys (its control workers have none): refusing to run tasks whose payloads travel in clear; set RUNFLEET_ALLOW_PLAINTEXT=1 on a development setup',
      );
    // A payload under a key this runner lacks (a re-key or rotation since it joined): ask the
    // fleet once for the current keys (`connect` with the same boot: no new session).
    opts.keys.setRefresher(async () => {
      const fresh = await this.register(conn.client, identity);
      opts.keys.set(openKeys(identity.privateKey, fresh.keys));
      opts.log(`data keys refreshed from the fleet: ${fresh.keys.map((k) => k.id).join(', ')}`);
    });
    let settings: RunnerSettings = grant.settings;
    let deleted!: () => void;
    const deleteRequested = new Promise<'deleted'>((resolve) => {
      deleted = () => resolve('deleted');
    });
    const client = conn.client;
    const stopping = new AbortController();
    this.lastAnswer = Date.now();
    const runner = await createRunner({
      connection: conn.connection,
      namespace: opts.namespace,
      name: opts.name,
      pool: grant.pool,
      slots: this.slots(settings),
      evictionMs: settings.evictionMs,
      dataDir: opts.stateDir,
      dataConverter: opts.dataConverter,
      drivers: opts.drivers,
      bootId: this.bootId,
      claimed: this.claimed,
      runnerId: identity.runnerId,
      version: opts.version,
      passEnv: opts.passEnv,
      logRetentionMs: opts.logRetentionMs,
      ...(opts.objectStore ? { objectStore: opts.objectStore } : {}),
      ...(opts.tracing ? { tracing: opts.tracing } : {}),
      shutdownGraceMs: opts.shutdownGraceMs,
      log: opts.log,
      report: (record, outcome, note) => this.report(record.labels, outcome, note),
      runState: (runId) => this.runState(runId),
      signer: this.signer as RunnerSigner,
      fetchRunEnv: (runId) => client.workflow.getHandle(runId).query(runEnvQuery, { runner: opts.name }),
      session: {
        stopping: stopping.signal,
        apply: ({ enabled, settings: next }) => {
          if (this.slots(next) !== runner.slots.capacity) {
            opts.log(`slots: ${runner.slots.capacity} -> ${this.slots(next)} (from the fleet)`);
            runner.slots.setCapacity(this.slots(next));
          }
          settings = next;
          runner.slots.setAccepting(enabled);
          if (this.state === 'ready' || this.state === 'disabled' || this.state === 'recovering') {
            this.set(
              enabled ? 'ready' : 'disabled',
              enabled ? 'serving' : 'disabled by the fleet: finishing running tasks, taking no new work',
            );
          }
          opts.log(
            enabled
              ? `session: enabled (${this.slots(next)} slots)`
              : 'session: disabled: finishing running tasks, taking no new work',
          );
        },
        online: (generation) =>
          client.workflow
            .getHandle(runnerWorkflowId(opts.name))
            .signal(sessionOnlineSignal, { runnerId: identity.runnerId, bootId: this.bootId, generation }),
        deleteRequested: ({ by, reason }) => {
          opts.log(`purged by ${by}: ${reason}`);
          deleted();
        },
      },
    });
    this.runner = runner;
    this.client = client;
    runner.slots.setAccepting(grant.enabled);

    // Before serving: what an earlier process left, and the schedule.
    this.set('recovering', 'recovering tasks of an earlier process');
    const found = await runner.recover();
    if (found > 0) opts.log(`recovering ${found} task(s) an earlier runner process started`);
    if (opts.describeSchedules) {
      try {
        for (const line of await opts.describeSchedules(client)) opts.log(line);
      } catch (err) {
        opts.log(`could not read the runner's schedules: ${firstLine(err)}`);
      }
    }

    const running = runner.run();
    this.set(grant.enabled ? 'ready' : 'disabled', grant.enabled ? 'serving' : 'disabled by the fleet');
    opts.log(
      `runner ${opts.name} serving pool ${grant.pool} with ${runner.slots.capacity} slots (${runner.drivers.join(', ')}) at ${opts.address}, namespace ${opts.namespace}${grant.enabled ? '' : ' (disabled)'}`,
    );

    // The watchdog: the runner's own check that the server answers.
    let watchdogFired!: () => void;
    const lost = new Promise<'lost'>((resolve) => {
      watchdogFired = () => resolve('lost');
    });
    const ping = setInterval(() => {
      conn.connection.workflowService.getSystemInfo({}).then(
        () => (this.lastAnswer = Date.now()),
        () => undefined,
      );
      if (Date.now() - this.lastAnswer > settings.watchdogMs) {
        opts.log(
          `no answer from Temporal for ${Math.round((Date.now() - this.lastAnswer) / 1000)}s: restarting the connection`,
        );
        watchdogFired();
      }
    }, settings.pingMs);
    const sweepGone = () => void this.sweepGone(client, runner, grant.pool);
    sweepGone();
    const sweeper = setInterval(() => {
      void runner.recover();
      sweepGone();
    }, opts.staleSweepMs ?? STALE_SWEEP_MS);
    sweeper.unref();
    const stopped = new Promise<'stopped'>((resolve) => {
      if (opts.stopSignal.aborted) resolve('stopped');
      opts.stopSignal.addEventListener('abort', () => resolve('stopped'), { once: true });
    });
    const ended = running.then(() => 'stopped' as const);

    const outcome = await Promise.race([stopped, deleteRequested, lost, ended]);
    clearInterval(ping);
    clearInterval(sweeper);
    this.client = null;
    if (outcome === 'lost') {
      this.set('idle', 'unreachable: the server did not answer pings; reconnecting');
    } else this.set('stopping', outcome === 'deleted' ? 'purged' : 'stopping');
    // Let the session's completion reach the server before the workers go.
    if (outcome === 'deleted') await sleep(1_000);
    stopping.abort();
    runner.shutdown();
    await running.catch((err: unknown) => opts.log(`workers stopped with an error: ${firstLine(err)}`));
    this.runner = null;
    return outcome;
  }

  /**
   * A run's view of its tasks (its `state` query) through the connection of the moment; null
   * when the run is gone. While rejoining, fails so the caller asks again later.
   */
  private async runState(runId: string): Promise<RunState | null> {
    const client = this.client;
    if (client === null) throw new Error('not connected to Temporal (rejoining)');
    try {
      return await client.workflow.getHandle(runId).query(stateQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /** Reports through the connection of the moment; while rejoining, fails so the caller retries. */
  private report(labels: TaskLabels, outcome: TaskOutcome, note: string): Promise<void> {
    if (this.client === null) return Promise.reject(new Error('not connected to Temporal (rejoining)'));
    return reportOutcome(this.client, this.signer as RunnerSigner, this.opts.name, labels, outcome, note);
  }
}

/**
 * Sends a task's true outcome to its run (the run's `taskReport` signal), signed: the run refuses
 * a report its runner's registered signing key does not verify. A run that is gone (finished,
 * stopped, purged from retention) no longer waits for it: delivered.
 */
async function reportOutcome(
  client: Client,
  signer: RunnerSigner,
  runner: string,
  labels: TaskLabels,
  outcome: TaskOutcome,
  note: string,
): Promise<void> {
  try {
    const report = { task: labels.task, attempt: labels.attempt, runner, outcome, note };
    const proof = signer.sign({ about: 'report', run: labels.run, ...report });
    await client.workflow.getHandle(labels.run).signal(taskReportSignal, { ...report, proof });
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return;
    throw err;
  }
}

/** The reason when the fleet refused the token or identity, else null. */
function rejection(err: unknown): string | null {
  // A token this host cannot even read (not rfr_<id>_<secret>) is refused before anything is sent.
  if (err instanceof RunfleetError && (err.code === 'TokenRejected' || err.code === 'Unauthorized'))
    return err.message.replace(/^token rejected: /, '');
  const cause = err instanceof WorkflowUpdateFailedError ? err.cause : err;
  if (
    cause instanceof ApplicationFailure &&
    (cause.type === 'TokenRejected' || cause.type === 'NotFound' || cause.type === 'Unauthorized')
  ) {
    return cause.message.replace(/^token rejected: /, '');
  }
  return null;
}

function isNotFound(err: unknown): boolean {
  return /not found|already completed/i.test(String((err as Error)?.message ?? ''));
}

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split('\n')[0] ?? '';
}
