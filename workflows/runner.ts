/**
 * One runner in the registry (`runner/<name>`): an entity workflow that holds the runner's record
 * (src/registry/state.ts) and keeps exactly one session activity on the runner's own queue while
 * the runner is registered. Clients reach it with update-with-start (`runner create`), the runner
 * with `register` / `connect`, runs with `taskLost` / `taskFound`.
 *
 * The session is how the fleet knows the runner is alive and how it tells the runner what to do:
 * - its heartbeats carry the runner's live status and add nothing to history (an idle runner
 *   costs a session renewal an hour: the runner ends each session with `renew` before its
 *   one-hour start-to-close);
 * - no heartbeat for 2/3 of the watchdog (20 s): the runner is `idle`, and the next session is
 *   offered with a schedule-to-start of 4/3 of the watchdog (40 s); not taken: `lost` (a
 *   temporary runner is then purged); taken: `ready` again;
 * - enable, disable, new settings, a restart of the runner: the current session is cancelled
 *   and the next generation carries the new state;
 * - purge: the next session carries `delete` and the runner wipes itself and exits.
 *
 * A purged runner's workflow completes with its final record; its id may be used again by a
 * later `runner create` (the default id reuse policy, ALLOW_DUPLICATE).
 *
 * Admission (patch `operator-admission`): a token is admitted by a grant the operator key signed;
 * `register` carries the token key's proof over the runner's identity (checked here, nothing
 * secret in history); the control worker verifies grant and proof before it seals a data key.
 * Purge, configure, enable and disable carry an operator signature that the control worker
 * verifies before the command applies. Histories from before take the old paths.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  metricMeter,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
  type SignalDefinition,
} from '@temporalio/workflow';
import type { RegistryActivities, RunnerControlActivities, SessionEnd } from '../activities/types';
import { NON_RETRYABLE_TYPES } from '../src/errors';
import { failure } from '../src/failures';
import { fleetWorkflowId, runnerTaskQueue } from '../src/ids';
import { METRICS } from '../src/metrics';
import * as st from '../src/registry/state';
import { operatorCommand, type OperatorAction } from '../src/security/statements';
import { carriedStateProblem, invalidStart, refuseStart } from './start-checks';
import { runnerGoneSignal, runnerRegisteredSignal, type FleetLink } from './fleet-messages';
import { runnerPurgedSignal } from './run-messages';
import {
  admissionQuery,
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
  sessionOnlineSignal,
  taskFoundSignal,
  taskLostSignal,
  type AdminRequest,
  type PingReply,
  type RegistrationGrant,
  type RunnerRecord,
  type RunnerWorkflowInput,
  type SealedKey,
} from './runner-messages';

/**
 * Continue as new past this many events (or when the server suggests it): a runner's workflow
 * lives as long as the runner and is replayed on every cache miss. A session renewal costs
 * ~10 events, so this is months of an idle runner.
 */
const CONTINUE_AS_NEW_AT_EVENTS = 2_000;
/** A ping is interactive: a runner that does not answer in 10 s is reported as not answering. */
const PING_TIMEOUT_MS = 10_000;
/** How long a purged runner has to take its `delete` session before the workflow ends without it. */
const WIPE_WAIT_MS = 30_000;
/** A session the runner failed (not a timeout): wait before the next, so a broken runner is no hot loop. */
const SESSION_FAILURE_BACKOFF_MS = 5_000;
/** Operator-signed admission and commands; histories recorded before take the old paths. */
const OPERATOR_ADMISSION_PATCH = 'operator-admission';

const registry = proxyActivities<RegistryActivities>({
  // Sealing is local work on the control worker: seconds at most.
  startToCloseTimeout: '30s',
  // No control worker serving it: the runner's register/connect fails (it retries) instead of hanging.
  scheduleToCloseTimeout: '1m',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

export async function runnerWorkflow(input: RunnerWorkflowInput): Promise<RunnerRecord> {
  refuseStart(carriedStateProblem('resume', input?.resume, "runner's registry workflow"));
  const state = st.resumedState(input?.resume) ?? initial(input);
  const name = state.record.name;
  const now = () => new Date(Date.now()).toISOString();
  /** Set by purge when the runner is connected: its last session carries `delete`. */
  let wipe: { by: string; reason: string } | null = null;

  const check = (problem: st.Problem | null) => {
    if (problem) throw failure(problem.code, problem.message);
  };
  // Metrics (src/metrics.ts): the SDK records nothing while replaying.
  const m = METRICS;
  const refusals = metricMeter.createCounter(
    m.registrationsRefused.name,
    m.registrationsRefused.unit,
    m.registrationsRefused.description,
  );
  const transitions = metricMeter.createCounter(
    m.runnerTransitions.name,
    m.runnerTransitions.unit,
    m.runnerTransitions.description,
  );
  /** A registration or reconnection checked in its validator: a refusal is counted by its reason. */
  const admitCheck = (problem: st.Problem | null) => {
    if (problem) refusals.add(1, { reason: problem.code });
    check(problem);
  };

  setHandler(recordQuery, () => state.record);
  setHandler(admissionQuery, () => state.admission ?? null);

  setHandler(
    issueTokenUpdate,
    (req) => {
      check(st.issueTokenProblem(state, req, Date.now(), !patched(OPERATOR_ADMISSION_PATCH)));
      return st.issueToken(state, req, now());
    },
    { validator: (req) => check(st.issueTokenProblem(state, req, Date.now())) },
  );

  setHandler(
    revokeTokenUpdate,
    (req) => {
      check(st.revokeTokenProblem(state));
      return st.revokeToken(state, req, now());
    },
    { validator: (_req) => check(st.revokeTokenProblem(state)) },
  );

  // A token in clear is how runners registered before grants (a proof replaces it since).
  const registerProblem = (req: Parameters<typeof st.registerProblem>[1]) =>
    st.registerProblem(
      state,
      req,
      req?.proof === undefined && typeof req?.token === 'string' ? st.tokenSha256(req.token) : null,
      Date.now(),
    );
  const registerCheck = (req: Parameters<typeof st.registerProblem>[1]) => check(registerProblem(req));

  setHandler(
    registerUpdate,
    async (req) => {
      // Again here: two registrations in one workflow task both passed their validators.
      registerCheck(req);
      st.spendToken(state);
      let keys: SealedKey[];
      try {
        const g = state.grant;
        const admission =
          g && req.proof && typeof req.proofSignature === 'string'
            ? { grant: g.grant, signature: g.signature, proof: req.proof, proofSignature: req.proofSignature }
            : undefined;
        keys = await registry.sealDataKeys({ publicKey: req.publicKey, ...(admission ? { admission } : {}) });
      } catch (err) {
        st.spendToken(state, false);
        throw sealingFailure(name, err);
      }
      st.register(state, req, now());
      const fleet = state.record.fleet;
      if (fleet) {
        await tellFleet(fleet, runnerRegisteredSignal, {
          runner: name,
          instanceId: fleet.instanceId,
          tokenId: state.record.token?.id ?? '',
        });
      }
      return grant(keys);
    },
    { validator: (req) => admitCheck(registerProblem(req)) },
  );

  setHandler(
    connectUpdate,
    async (req) => {
      check(st.connectProblem(state, req));
      const restarted = st.connect(state, req, now());
      if (restarted) st.note(state, now(), `runner started (boot ${req.bootId})`);
      let keys: SealedKey[];
      try {
        keys = await registry.sealDataKeys({
          publicKey: state.record.identity?.publicKey ?? '',
          ...(state.admission ? { admission: state.admission } : {}),
        });
      } catch (err) {
        throw sealingFailure(name, err);
      }
      return grant(keys);
    },
    { validator: (req) => admitCheck(st.connectProblem(state, req)) },
  );

  /**
   * An operator command applies only once the control worker verified its signature (the
   * workflow does not hold the operator key). The nonce is spent first: of two updates with one
   * signature, the second is refused even while the first waits for its verification.
   */
  // Null (no await at all) where an old history replays: its commands must come in their old order.
  const authorize = (action: OperatorAction, req: AdminRequest | undefined): Promise<void> | null => {
    if (!patched(OPERATOR_ADMISSION_PATCH)) return null;
    check(st.operatorProblem(state, req?.operator, Date.now()));
    const sig = req?.operator as NonNullable<AdminRequest['operator']>;
    st.spendNonce(state, sig, Date.now());
    return registry
      .verifyOperatorCommand({ command: operatorCommand(name, action, req, sig), signature: sig.signature })
      .catch((err: unknown) => {
        st.releaseNonce(state, sig);
        const cause = err instanceof ActivityFailure ? err.cause : err;
        if (cause instanceof ApplicationFailure && cause.type === 'Unauthorized')
          throw failure('Unauthorized', cause.message);
        throw failure('Internal', `runner ${name}: the operator signature could not be checked: ${message(err)}`);
      });
  };
  const operatorCheck = (req: AdminRequest | undefined) =>
    check(st.adminProblem(state) ?? st.operatorProblem(state, req?.operator, Date.now()));

  const setEnabled = (enabled: boolean) => async (req: AdminRequest) => {
    check(st.adminProblem(state));
    const verifying = authorize(enabled ? 'enable' : 'disable', req);
    if (verifying) {
      await verifying;
      check(st.adminProblem(state));
    }
    st.setEnabled(state, enabled, admin(req), now());
    return state.record;
  };
  setHandler(enableUpdate, setEnabled(true), { validator: operatorCheck });
  setHandler(disableUpdate, setEnabled(false), { validator: operatorCheck });

  setHandler(
    configureUpdate,
    async (req) => {
      check(st.configureProblem(state, req));
      const verifying = authorize('configure', req);
      if (verifying) {
        await verifying;
        check(st.configureProblem(state, req));
      }
      st.configure(state, { ...req, by: admin(req).by }, now());
      return state.record;
    },
    {
      validator: (req) =>
        check(st.configureProblem(state, req) ?? st.operatorProblem(state, req?.operator, Date.now())),
    },
  );

  setHandler(
    pingUpdate,
    async (): Promise<PingReply> => {
      check(st.pingProblem(state));
      const started = Date.now();
      const ping = proxyActivities<RunnerControlActivities>({
        taskQueue: runnerTaskQueue(name),
        // Both bounded: a runner that is not polling, or that polls but hangs, does not answer.
        scheduleToStartTimeout: PING_TIMEOUT_MS,
        startToCloseTimeout: PING_TIMEOUT_MS,
        retry: { maximumAttempts: 1 },
      });
      try {
        const status = await ping.pingRunner();
        st.seen(state, now());
        return { status, roundTripMs: Date.now() - started };
      } catch (err) {
        const since = [...state.record.history].reverse().find((h) => h.status === state.record.status)?.at;
        throw failure(
          'ComponentUnavailable',
          `runner ${name} did not answer a ping in ${PING_TIMEOUT_MS / 1000}s (status ${state.record.status}${since ? ` since ${since}` : ''}): ${message(err)}`,
        );
      }
    },
    { validator: () => check(st.pingProblem(state)) },
  );

  setHandler(
    purgeUpdate,
    async (req) => {
      check(st.adminProblem(state));
      const verifying = authorize('purge', req);
      if (verifying) {
        await verifying;
        check(st.adminProblem(state));
      }
      await purge(admin(req));
      return state.record;
    },
    { validator: operatorCheck },
  );

  setHandler(sessionOnlineSignal, (sig) => void st.sessionOnline(state, sig, now()));
  setHandler(taskLostSignal, (ref) => st.taskLost(state, ref));
  setHandler(taskFoundSignal, (ref) => st.taskFound(state, ref));

  // A new run (after continue-as-new) starts the session again, as a new generation.
  if (input?.resume && st.isRegistered(state)) st.nextGeneration(state);

  const continueAsNewDue = () => historyIsLong() && allHandlersFinished();

  // Each status the runner enters, counted (no command: a condition without a timeout adds none).
  void (async () => {
    for (let seen = state.record.status; ; seen = state.record.status) {
      await condition(() => state.record.status !== seen);
      transitions.add(1, { to: state.record.status });
    }
  })();

  for (;;) {
    await condition(() => st.isRegistered(state) || st.isDeleted(state) || continueAsNewDue());
    if (st.isDeleted(state)) break;
    if (!st.isRegistered(state)) {
      await continueAsNew<typeof runnerWorkflow>({ ...input, resume: state });
    }
    const outcome = await session();
    if (outcome === 'continue-as-new') {
      await condition(allHandlersFinished);
      await continueAsNew<typeof runnerWorkflow>({ ...input, resume: state });
    }
  }

  if (wipe) {
    // The runner's last session tells it to wipe itself and exit; it has 30 s to take it.
    const last = sessionActivity(state.generation, { scheduleToCloseTimeout: WIPE_WAIT_MS });
    try {
      const end = await last.runnerSession(st.sessionRequest(state, wipe));
      st.note(state, now(), end.reason === 'deleted' ? 'the runner wiped itself' : `the runner ended: ${end.reason}`);
    } catch (err) {
      st.note(state, now(), `the runner did not confirm its deletion in ${WIPE_WAIT_MS / 1000}s: ${message(err)}`);
    }
  }
  await condition(allHandlersFinished);
  return state.record;

  /**
   * Runs the current generation's session until it ends or is superseded (a new generation,
   * a purge, continue-as-new), then moves the status on from how it ended.
   */
  async function session(): Promise<'next' | 'continue-as-new'> {
    const generation = state.generation;
    const toStart = st.scheduleToStartMs(state);
    const t = st.timings(state.record.settings);
    const wasIdle = state.record.status === 'idle';
    const act = sessionActivity(generation, {
      heartbeatTimeout: t.heartbeatTimeoutMs,
      ...(toStart === null ? {} : { scheduleToStartTimeout: toStart }),
    });
    const scope = new CancellationScope();
    let result: { ok: true; end: SessionEnd } | { ok: false; err: unknown } | null = null;
    const running = scope
      .run(() => act.runnerSession(st.sessionRequest(state)))
      .then(
        (end) => void (result = { ok: true, end }),
        (err: unknown) => void (result = { ok: false, err }),
      );
    await condition(
      () => result !== null || state.generation !== generation || st.isDeleted(state) || continueAsNewDue(),
    );
    if (result === null) {
      // Superseded: TRY_CANCEL settles at once; the runner sees the cancel on its next heartbeat.
      scope.cancel();
      await running;
      if (state.generation !== generation || st.isDeleted(state)) return 'next';
      return 'continue-as-new';
    }
    const ended = result as { ok: true; end: SessionEnd } | { ok: false; err: unknown };
    if (state.generation !== generation || st.isDeleted(state)) return 'next';
    if (ended.ok) {
      // `renew`: the runner ends its session before the start-to-close; the next one follows.
      st.nextGeneration(state);
      return 'next';
    }
    const timeout = timeoutOf(ended.err);
    if (timeout === 'SCHEDULE_TO_START') {
      if (wasIdle) {
        const autoPurge = st.sessionNotTaken(
          state,
          now(),
          `no session taken for ${seconds(toStart ?? 0)} after it went idle`,
        );
        if (autoPurge) {
          await purge({ by: 'runfleet', reason: 'temporary runner gone' });
          return 'next';
        }
      } else {
        st.sessionSilent(state, now(), `session not taken for ${seconds(toStart ?? 0)}`);
      }
    } else if (timeout === 'HEARTBEAT' || timeout === 'START_TO_CLOSE') {
      st.sessionSilent(state, now(), `no session heartbeat for ${seconds(t.heartbeatTimeoutMs)}`);
    } else {
      st.note(state, now(), `session ${generation} failed: ${message(ended.err)}`);
      await sleep(SESSION_FAILURE_BACKOFF_MS);
    }
    if (state.generation === generation) st.nextGeneration(state);
    return 'next';
  }

  function sessionActivity(
    generation: number,
    timeouts: { heartbeatTimeout?: number; scheduleToStartTimeout?: number; scheduleToCloseTimeout?: number },
  ) {
    return proxyActivities<RunnerControlActivities>({
      taskQueue: runnerTaskQueue(name),
      activityId: `session/${generation}`,
      // The runner ends a session with `renew` well before this (after 55 minutes).
      startToCloseTimeout: '1h',
      ...timeouts,
      // A session is never retried: each ending is news, answered by the next generation.
      retry: { maximumAttempts: 1 },
      cancellationType: ActivityCancellationType.TRY_CANCEL,
    });
  }

  async function purge(req: { by: string; reason?: string }): Promise<void> {
    const reason = req.reason?.trim() || 'purged';
    const done = st.purge(state, { by: req.by, reason }, now());
    if (done.wipe) wipe = { by: req.by, reason };
    const told = await Promise.all(
      done.notify.map(async (t) => {
        try {
          await getExternalWorkflowHandle(t.runWorkflowId).signal(runnerPurgedSignal, {
            runner: name,
            reason,
            by: req.by,
          });
          return true;
        } catch {
          return false; // the run has ended: nothing waits for the task any more
        }
      }),
    );
    if (done.notify.length > 0) {
      const ok = told.filter(Boolean).length;
      st.note(state, now(), `told ${ok} of ${done.notify.length} runs with lost tasks that the runner is gone`, req.by);
    }
    const fleet = state.record.fleet;
    if (fleet) {
      await tellFleet(fleet, runnerGoneSignal, { runner: name, instanceId: fleet.instanceId, by: req.by, reason });
    }
  }

  /** Tells the fleet that launched this runner; a fleet that is gone has nothing to learn. */
  async function tellFleet<T>(fleet: FleetLink, signal: SignalDefinition<[T]>, arg: T): Promise<void> {
    try {
      await getExternalWorkflowHandle(fleetWorkflowId(fleet.name)).signal(signal, arg);
    } catch (err) {
      st.note(state, now(), `fleet ${fleet.name} could not be told (${signal.name}): ${message(err)}`);
    }
  }

  function grant(keys: SealedKey[]): RegistrationGrant {
    const r = state.record;
    return {
      kind: 'runfleet/key-delivery',
      name: r.name,
      runnerId: r.identity?.runnerId ?? '',
      pool: r.pool,
      labels: { ...r.labels },
      temporary: r.temporary,
      enabled: r.enabled,
      settings: { ...r.settings },
      keys,
    };
  }
}

function initial(input: RunnerWorkflowInput): st.RegistryState {
  const bad = st.inputProblem(input);
  if (bad) {
    invalidStart(`runnerWorkflow takes {"name", "pool", "labels"?, "temporary"?, "settings"?}: ${bad}`);
  }
  return st.initialState(input, new Date(Date.now()).toISOString());
}

function admin(req: AdminRequest | undefined): { by: string; reason?: string } {
  const by = typeof req?.by === 'string' && req.by.trim() ? req.by.trim() : 'unknown';
  return typeof req?.reason === 'string' && req.reason.trim() ? { by, reason: req.reason.trim() } : { by };
}

/** The failure of a sealing that did not happen: `Unauthorized` as the control worker said it, else Internal. */
function sealingFailure(name: string, err: unknown): ApplicationFailure {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure && cause.type === 'Unauthorized')
    return failure('Unauthorized', cause.message);
  return failure('Internal', `runner ${name}: the data keys could not be sealed: ${message(err)}`);
}

function timeoutOf(err: unknown): TimeoutFailure['timeoutType'] | null {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof TimeoutFailure ? cause.timeoutType : null;
}

function historyIsLong(): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength > CONTINUE_AS_NEW_AT_EVENTS;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)}s`;
}

function message(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return message(err.cause);
  return err instanceof Error ? err.message : String(err);
}
