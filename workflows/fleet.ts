/**
 * The fleet entity workflow, `fleet/<name>`: holds the desired state, the instance records, the
 * registration tokens and the pools of one EC2 runner fleet, and refreshes it: periodically, and
 * when `apply` or `refresh` asks.
 *
 * One workflow with a fixed id is the lock: its main loop is the only place a refresh runs, so
 * two refreshes never overlap (a second `apply` waits for the next one). Commands that answer are
 * updates with validators; the records' transitions are synchronous check-and-set steps in
 * `src/fleet/records.ts`, so a claim and a termination of one instance cannot both win.
 *
 * Termination is two-phase and crash-safe: (1) the record is marked `terminated` (conditional on
 * the version maintenance saw: a claim or renewal in between wins); (2) TerminateInstances,
 * retried (here and by every later refresh) until EC2 reports shutting-down or terminated;
 * (3) only then are the record, its heartbeat and its runner's registration deleted. The record
 * lives in workflow state, so a worker killed between phases resumes where it stopped.
 */
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  log,
  proxyActivities,
  setHandler,
  metricMeter,
  sleep,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Ec2Activities, Ec2Calls } from '../activities/ec2';
import type { FleetRegistryActivities } from '../activities/fleet-registry';
import { formatDuration } from '../src/duration';
import { NON_RETRYABLE_TYPES, isErrorCode } from '../src/errors';
import { fleetRunnerName, fleetWorkflowId, poolTaskQueue, runnerTaskQueue } from '../src/ids';
import {
  desiredTemplate,
  instanceTags,
  planFleet,
  poolName,
  templateName,
  type Plan,
  type PlanItem,
} from '../src/fleet/plan';
import {
  addLaunched,
  addToken,
  claim,
  claimInstance,
  closeGone,
  confirmTerminated,
  currentToken,
  expiredRecords,
  markRunning,
  markTerminated,
  registered,
  release,
  renew,
  runnerGone,
} from '../src/fleet/records';
import type { FleetSpec } from '../src/fleet/schema';
import type {
  FleetState,
  HoldRequest,
  InstanceRecord,
  ProvisionRequest,
  ProvisionResult,
  RefreshSummary,
  TokenRecord,
} from '../src/fleet/types';
import { INSTANCE_STATES, initialFleetState, LIVE_STATES, type InstanceState } from '../src/fleet/types';
import { METRICS } from '../src/metrics';
import { checkFleetSpec } from '../src/fleet/validate';
import { carriedStateProblem, invalidStart, refuseStart, wholeNumberProblem } from './start-checks';
import { runnerGoneSignal, runnerRegisteredSignal } from './fleet-messages';

export type { HoldRequest, ProvisionRequest, ProvisionResult } from '../src/fleet/types';

export interface FleetOptions {
  /** Start-to-close timeout of one EC2 activity. Default 60 s: a page of 1,000 instances takes seconds. */
  ec2TimeoutMs?: number;
  /** Refreshes before continuing as new, whatever the history size. Default 200. */
  refreshesPerRun?: number;
}

export interface FleetInput {
  name: string;
  /** Carried over by continue-as-new. */
  state?: FleetState;
  options?: FleetOptions;
}

/** What `fleet status` shows: the state, without token hashes. */
export interface FleetStatus {
  name: string;
  applied: boolean;
  pools: {
    resourceClass: string;
    taskQueue: string;
    minIdle: number;
    maxInstances: number;
    counts: Record<string, number>;
  }[];
  records: InstanceRecord[];
  registrations: FleetState['registrations'];
  tokens: Omit<TokenRecord, 'hash'>[];
  lastRefresh: RefreshSummary | null;
  refreshes: number;
}

export type RefreshResult = RefreshSummary & { plan: Plan | null };

export const fleetStatusQuery = defineQuery<FleetStatus>('fleetStatus');
/** Desired state in; what a refresh would change out. Changes nothing. */
export const planUpdate = defineUpdate<Plan, [unknown]>('plan');
/** Desired state in; runs a refresh with it (after any refresh in progress) and reports it. */
export const applyUpdate = defineUpdate<RefreshResult, [unknown]>('apply');
export const refreshUpdate = defineUpdate<RefreshResult, []>('refresh');
export const provisionUpdate = defineUpdate<ProvisionResult, [ProvisionRequest]>('provision');
export const startTaskUpdate = defineUpdate<InstanceRecord, [HoldRequest]>('startTask');
export const renewUpdate = defineUpdate<InstanceRecord, [HoldRequest]>('renew');
export const releaseUpdate = defineUpdate<InstanceRecord, [HoldRequest]>('release');

type InstanceItem = Extract<PlanItem, { kind: 'instance' }>;

const DEFAULT_LEASE_MS = 3_600_000;
/** TerminateInstances rounds within one refresh; pending ones are retried by the next refresh. */
const TERMINATE_ROUNDS = 4;

export async function fleetWorkflow(input: FleetInput): Promise<void> {
  const name = input?.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$/.test(name)) {
    invalidStart('fleetWorkflow takes { name } with a valid fleet name');
  }
  const options = input.options ?? {};
  refuseStart(
    carriedStateProblem('state', input.state, 'fleet workflow'),
    wholeNumberProblem('options.ec2TimeoutMs', options.ec2TimeoutMs, 1_000, 3_600_000),
    wholeNumberProblem('options.refreshesPerRun', options.refreshesPerRun, 1, 10_000),
  );
  const state: FleetState = input.state ?? initialFleetState(name);
  // EC2 and the registry alike: retried with backoff; desired-state mistakes fail at once.
  const activityOptions = {
    startToCloseTimeout: options.ec2TimeoutMs ?? 60_000,
    retry: {
      initialInterval: 1_000,
      backoffCoefficient: 2,
      maximumInterval: 30_000,
      maximumAttempts: 8,
      nonRetryableErrorTypes: NON_RETRYABLE_TYPES,
    },
  };
  const ec2 = proxyActivities<Ec2Activities>(activityOptions);
  const registry = proxyActivities<FleetRegistryActivities>(activityOptions);
  const now = () => new Date().toISOString();

  let pendingSpec: FleetSpec | null = null;
  let requested = 0;
  let completed = 0;
  let lastResult: RefreshResult | null = null;
  /** Launches in flight per class, so provisions and refreshes together respect maxInstances. */
  const launching: Record<string, number> = {};

  const specOf = (input: unknown): FleetSpec => {
    const checked = checkFleetSpec(input);
    if (!checked.ok)
      throw invalid(
        'InvalidConfig',
        ['invalid fleet spec:', ...checked.problems.map((p) => `  ${p.path}: ${p.message}`)].join('\n'),
      );
    if (checked.spec.name !== name)
      throw invalid('InvalidConfig', `this is fleet "${name}"; the spec is for "${checked.spec.name}"`);
    return checked.spec;
  };
  const applied = (): FleetSpec => {
    if (!state.spec)
      throw invalid('InvalidState', `fleet "${name}" has no desired state yet: run \`runfleet fleet apply\``);
    return state.spec;
  };
  const requestRefresh = async (): Promise<RefreshResult> => {
    const mine = ++requested;
    await condition(() => completed >= mine);
    return lastResult as RefreshResult;
  };

  setHandler(fleetStatusQuery, () => status(state));

  setHandler(
    planUpdate,
    async (input) => {
      const spec = specOf(input);
      const observed = await ec2.observeFleet({ fleet: name });
      return planFleet(spec, observed, state, now());
    },
    { validator: (input) => void specOf(input) },
  );

  setHandler(
    applyUpdate,
    async (input) => {
      pendingSpec = specOf(input);
      const result = await requestRefresh();
      if (result.error) throw invalid(result.errorType ?? 'Internal', `refresh failed: ${result.error}`);
      return result;
    },
    { validator: (input) => void specOf(input) },
  );

  setHandler(
    refreshUpdate,
    async () => {
      const result = await requestRefresh();
      if (result.error) throw invalid(result.errorType ?? 'Internal', `refresh failed: ${result.error}`);
      return result;
    },
    { validator: () => void applied() },
  );

  // The registry checked the runner's token (its instance's own, within its lifetime) before telling us.
  setHandler(runnerRegisteredSignal, (sig) => {
    if (!state.spec) return;
    const r = registered(state, state.spec, sig, now());
    if (!r.ok) log.warn('runner registration ignored', { runner: sig?.runner, reason: r.reason });
  });
  setHandler(runnerGoneSignal, (sig) => {
    if (sig?.by === fleetWorkflowId(name)) return; // our own phase 3: the record goes with it
    const r = runnerGone(state, sig?.instanceId, `its runner was purged by ${sig?.by}: ${sig?.reason}`, now());
    if (r.ok) requested++; // terminate it now, not at the next tick
  });

  setHandler(
    provisionUpdate,
    async (req) => {
      const spec = applied();
      const leaseMs = req.leaseMs ?? DEFAULT_LEASE_MS;
      const already = Object.values(state.records).find(
        (r) => r.claimedBy === req.requestId && (r.state === 'claimed' || r.state === 'running'),
      );
      if (already) return provisioned(already, false);
      const c = claim(state, spec, req.resourceClass, req.requestId, leaseMs, now());
      if (c.ok) {
        refillSoon(spec, req.resourceClass);
        return provisioned(c.value, false);
      }
      const cls = spec.resourceClasses.find((x) => x.name === req.resourceClass);
      if (!cls) throw invalid('NotFound', `fleet "${name}" has no resource class "${req.resourceClass}"`);
      if (req.launch === false) throw invalid('InvalidState', c.reason);
      // A warm instance still booting, reserved for nobody: take it rather than launch another.
      const booting = Object.values(state.records).find(
        (r) =>
          r.resourceClass === req.resourceClass &&
          r.state === 'created' &&
          (r.claimedBy === null || r.claimedBy === req.requestId),
      );
      if (booting) booting.claimedBy = req.requestId;
      else if (liveCount(req.resourceClass) + (launching[req.resourceClass] ?? 0) >= cls.maxInstances) {
        throw invalid(
          'CapacityExhausted',
          `resource class "${req.resourceClass}" is at maxInstances (${cls.maxInstances}) with no idle instance`,
        );
      }
      const id = booting ? booting.instanceId : (await launch(spec, req.resourceClass, 1, req.requestId))[0];
      if (!id) throw invalid('Internal', 'EC2 launched no instance');
      const waitMs = req.waitMs ?? spec.registrationTimeout;
      await condition(() => state.records[id]?.state !== 'created', waitMs);
      const got = claimInstance(state, spec, id, req.requestId, leaseMs, now());
      if (!got.ok) {
        const r = state.records[id];
        // Unreserve it: maintenance terminates it when its registration time runs out.
        if (r && r.claimedBy === req.requestId) r.claimedBy = null;
        throw invalid('InvalidState', `no runner registered on ${id} within ${formatDuration(waitMs)} (${got.reason})`);
      }
      return provisioned(got.value, !booting);
    },
    {
      validator: (req) => {
        const spec = applied();
        if (!req || typeof req.requestId !== 'string' || req.requestId.length === 0)
          throw invalid('InvalidArgument', 'a provision request needs a requestId');
        if (!spec.resourceClasses.some((c) => c.name === req.resourceClass))
          throw invalid('NotFound', `fleet "${name}" has no resource class "${String(req.resourceClass)}"`);
      },
    },
  );

  const holdHandler = (fn: (req: HoldRequest, spec: FleetSpec) => ReturnType<typeof renew>) => ({
    handler: (req: HoldRequest) => {
      const r = fn(req, applied());
      if (!r.ok) throw invalid('InvalidState', r.reason);
      return r.value;
    },
    validator: (req: HoldRequest) => {
      applied();
      const r = state.records[req?.instanceId];
      if (!r) throw invalid('NotFound', `no instance ${String(req?.instanceId)} in fleet "${name}"`);
      if (r.claimedBy !== req.requestId || (r.state !== 'claimed' && r.state !== 'running'))
        throw invalid('InvalidState', `instance ${r.instanceId} is ${r.state}, not held by ${req.requestId}`);
    },
  });
  const start = holdHandler((req) =>
    markRunning(state, req.instanceId, req.requestId, req.leaseMs ?? DEFAULT_LEASE_MS, now()),
  );
  setHandler(startTaskUpdate, start.handler, { validator: start.validator });
  const ren = holdHandler((req) => renew(state, req.instanceId, req.requestId, req.leaseMs ?? DEFAULT_LEASE_MS, now()));
  setHandler(renewUpdate, ren.handler, { validator: ren.validator });
  const rel = holdHandler((req, spec) => {
    const r = release(state, spec, req.instanceId, req.requestId, now());
    // Past its lifetime: phase 1 is done; let a refresh terminate it now, not at the next tick.
    if (r.ok && r.value.state === 'terminated') requested++;
    else if (r.ok) refillSoon(spec, r.value.resourceClass);
    return r;
  });
  setHandler(releaseUpdate, rel.handler, { validator: rel.validator });

  // The instances by state, as a gauge (src/metrics.ts), set whenever the counts change (no command).
  const instancesGauge = metricMeter.createGauge(
    METRICS.fleetInstances.name,
    'int',
    METRICS.fleetInstances.unit,
    METRICS.fleetInstances.description,
  );
  const countsByState = () => {
    const counts = Object.fromEntries(INSTANCE_STATES.map((s) => [s, 0])) as Record<InstanceState, number>;
    for (const r of Object.values(state.records)) counts[r.state]++;
    return counts;
  };
  void (async () => {
    for (let last = ''; ;) {
      const counts = countsByState();
      last = JSON.stringify(counts);
      for (const s of INSTANCE_STATES) instancesGauge.set(counts[s], { fleet: name, state: s });
      await condition(() => JSON.stringify(countsByState()) !== last);
    }
  })();

  // --- the main loop: the only place a refresh runs ---------------------------------------------
  const refreshesPerRun = options.refreshesPerRun ?? 200;
  let refreshesThisRun = 0;
  for (;;) {
    const interval = (pendingSpec ?? state.spec)?.refreshInterval;
    if (interval === undefined) await condition(() => requested > completed);
    else await condition(() => requested > completed, interval);
    const target = requested;
    if (pendingSpec || state.spec) {
      lastResult = await refresh();
      refreshesThisRun++;
    }
    completed = target;
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > 5_000 || refreshesThisRun >= refreshesPerRun) {
      // Let every handler finish (an apply waiting for this refresh, a provision waiting for a
      // runner), unless one asks for another refresh first, or the periodic one falls due while
      // we wait: then loop, serve it, and try again.
      const next = (pendingSpec ?? state.spec)?.refreshInterval;
      const ready = () => allHandlersFinished() || requested > completed;
      const settled = next === undefined ? (await condition(ready), true) : await condition(ready, next);
      if (!settled) requested++;
      else if (requested === completed && allHandlersFinished()) {
        await continueAsNew<typeof fleetWorkflow>({ name, state, options });
      }
    }
  }

  // --- refresh, closed over the fleet's state ---------------------------------------------------

  async function refresh(): Promise<RefreshResult> {
    const spec = (pendingSpec ?? state.spec) as FleetSpec;
    pendingSpec = null;
    const startedAt = now();
    const calls: Ec2Calls = { read: 0, mutating: 0 };
    const add = (c: Ec2Calls) => {
      calls.read += c.read;
      calls.mutating += c.mutating;
    };
    const summary: RefreshResult = {
      startedAt,
      finishedAt: startedAt,
      changes: 0,
      templatesCreated: 0,
      templatesUpdated: 0,
      launched: 0,
      markedTerminated: 0,
      confirmedTerminated: 0,
      orphansTerminated: 0,
      closed: 0,
      tokenRotated: false,
      ec2Calls: calls,
      error: null,
      errorType: null,
      plan: null,
    };
    try {
      // Candidates for expiry are taken before EC2 is read: a claim or renewal that lands while
      // we wait bumps the record's version, and marking it then loses.
      const seen = new Map(expiredRecords(state, now()).map((e) => [e.instanceId, e.version] as const));
      const observed = await ec2.observeFleet({ fleet: name });
      add(observed.calls);
      const plan = planFleet(spec, observed, state, now());
      summary.plan = plan;
      summary.changes = plan.changes;
      // From here on this is the desired state, even if a step below fails: the next refresh
      // retries it rather than reverting to the previous one (no flip-flopping templates).
      state.spec = spec;

      for (const item of plan.items) {
        if (item.kind === 'token' && item.action === 'rotate') {
          const id = uuid4().replace(/-/g, ''); // hex: the registry's token ids
          const { hash } = await ec2.registrationTokenHash({ fleet: name, tokenId: id });
          const at = now();
          addToken(
            state,
            { id, hash, mintedAt: at, expiresAt: new Date(Date.parse(at) + spec.token.lifetime).toISOString() },
            at,
          );
          summary.tokenRotated = true;
        }
      }

      await Promise.all(
        plan.items.map(async (item) => {
          if (item.kind !== 'launch-template') return;
          if ((item.action === 'create' || item.action === 'update') && item.resourceClass) {
            const cls = spec.resourceClasses.find((c) => c.name === item.resourceClass);
            if (!cls) return;
            const r = await ec2.ensureLaunchTemplate({
              name: item.name,
              fleet: name,
              data: desiredTemplate(spec, cls),
            });
            add(r.calls);
            // Counted by what the plan asked: 'unchanged' here means an earlier attempt of this
            // activity (timed out after EC2 acted) did it already.
            if (item.action === 'create') summary.templatesCreated++;
            else summary.templatesUpdated++;
          } else if (item.action === 'delete' && item.templateId) {
            add((await ec2.deleteLaunchTemplate({ templateId: item.templateId })).calls);
          }
        }),
      );

      // Phase 1: conditional marks.
      for (const item of plan.items) {
        if (item.kind !== 'instance' || item.phase !== 'mark') continue;
        const version = seen.get(item.name);
        if (version === undefined) continue; // expired after our snapshot: the next refresh decides
        const r = markTerminated(state, item.name, version, item.reason, now());
        if (r.ok) summary.markedTerminated++;
        else log.info('termination lost to a concurrent change', { instanceId: item.name, reason: r.reason });
      }
      // Gone behind our back: its runner is purged first, then the record closes (unless it
      // changed meanwhile: the next refresh decides again). A crash in between purges again.
      const gone = plan.items.filter(
        (i): i is InstanceItem => i.kind === 'instance' && i.phase === 'gone' && i.version !== null,
      );
      if (gone.length > 0) {
        await registry.purgeRunners({
          fleet: name,
          runners: gone.map((i) => fleetRunnerName(i.name)),
          reason: 'its instance is gone from EC2',
        });
      }
      for (const item of gone) if (closeGone(state, item.name, item.version as number).ok) summary.closed++;
      // Phases 2 and 3: every record marked terminated (now or by an earlier refresh, a release or
      // a crashed worker), and the orphans.
      const orphans = plan.items.filter((i) => i.kind === 'instance' && i.phase === 'orphan').map((i) => i.name);
      await terminate(spec, orphans, summary, add);

      state.pools = Object.fromEntries(
        spec.resourceClasses.map((c) => [
          c.name,
          { resourceClass: c.name, taskQueue: poolTaskQueue(poolName(name, c.name)) },
        ]),
      );
      for (const item of plan.items) {
        if (item.kind !== 'pool' || item.action !== 'launch') continue;
        const cls = spec.resourceClasses.find((c) => c.name === item.resourceClass);
        if (!cls) continue;
        const count = Math.min(item.count, cls.maxInstances - liveCount(cls.name) - (launching[cls.name] ?? 0));
        if (count > 0) summary.launched += (await launch(spec, cls.name, count, null)).length;
      }
    } catch (err) {
      // A failed refresh leaves the state consistent (every step above is a finished transition);
      // the next one picks up. The caller of apply/refresh gets the error.
      summary.error =
        err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      const type = (err as { cause?: { type?: unknown } }).cause?.type ?? (err as { type?: unknown }).type;
      summary.errorType = typeof type === 'string' ? type : null;
      log.warn('fleet refresh failed', { error: summary.error });
    }
    summary.finishedAt = now();
    state.refreshes++;
    const { plan: _plan, ...rest } = summary;
    state.lastRefresh = rest;
    return summary;
  }

  async function terminate(
    spec: FleetSpec,
    orphans: string[],
    summary: RefreshSummary,
    add: (c: Ec2Calls) => void,
  ): Promise<void> {
    const orphanSet = new Set(orphans);
    let todo = [
      ...Object.values(state.records)
        .filter((r) => r.state === 'terminated')
        .map((r) => r.instanceId),
      ...orphans,
    ];
    for (let round = 0; round < TERMINATE_ROUNDS && todo.length > 0; round++) {
      if (round > 0) await sleep(Math.min(1_000 * 2 ** (round - 1), 10_000));
      const r = await ec2.terminateInstances({ instanceIds: todo });
      add(r.calls);
      const next: string[] = [];
      const done: string[] = [...r.confirmed];
      for (const id of r.notFound) {
        const rec = state.records[id];
        // Just launched and not visible yet is not gone: try again.
        if (rec && Date.now() - Date.parse(rec.launchedAt) < spec.orphanGrace) next.push(id);
        else done.push(id);
      }
      for (const id of r.pending) next.push(id);
      for (const id of todo) {
        const rec = state.records[id];
        if (rec) rec.terminateAttempts++;
      }
      // Phase 3, only now that EC2 confirmed: the runners' registrations go first (a crash here
      // leaves the record, and the next refresh purges again), then the records.
      if (done.length > 0) {
        await registry.purgeRunners({
          fleet: name,
          runners: done.map(fleetRunnerName),
          reason: 'its instance was terminated',
        });
      }
      for (const id of done) {
        if (orphanSet.has(id)) summary.orphansTerminated++;
        else if (confirmTerminated(state, id).ok) summary.confirmedTerminated++;
      }
      todo = next;
    }
    if (todo.length > 0)
      log.warn('instances not confirmed terminated yet; the next refresh retries', {
        instanceIds: todo.slice(0, 20),
        count: todo.length,
      });
  }

  async function launch(
    spec: FleetSpec,
    resourceClass: string,
    count: number,
    requestId: string | null,
  ): Promise<string[]> {
    launching[resourceClass] = (launching[resourceClass] ?? 0) + count;
    try {
      const subnet = spec.subnets[state.subnetCursor++ % spec.subnets.length] as string;
      const token = currentToken(state, now());
      if (!token) throw invalid('InvalidState', `fleet "${name}" has no valid registration token to launch with`);
      const r = await ec2.launchInstances({
        fleet: name,
        resourceClass,
        template: templateName(name, resourceClass),
        count,
        subnet,
        tokenId: token.id,
        clientToken: uuid4(),
        tags: instanceTags(spec, resourceClass),
      });
      for (const i of r.instances)
        addLaunched(state, spec, {
          instanceId: i.instanceId,
          resourceClass,
          launchedAt: i.launchTime,
          claimedBy: requestId,
        });
      const ids = r.instances.map((i) => i.instanceId);
      // Each instance's registry runner accepts the token in its user data, and only it: the
      // instance's own (the fleet token itself if an older worker launched it). A runner that
      // boots before this lands retries its registration; one never admitted expires as `created`.
      // The same activities in the same order either way: histories replay without a patch.
      const instanceTokens: Record<string, { id: string; hash: string }> = {};
      for (const i of r.instances) if (i.token) instanceTokens[i.instanceId] = i.token;
      if (ids.length > 0) {
        await registry.admitRunners({
          fleet: name,
          resourceClass,
          pool: poolName(name, resourceClass),
          instanceIds: ids,
          token: { id: token.id, hash: token.hash, expiresAt: token.expiresAt },
          instanceTokens,
          ...(spec.runnerSettings ? { settings: spec.runnerSettings } : {}),
        });
      }
      return ids;
    } finally {
      launching[resourceClass] = (launching[resourceClass] ?? 0) - count;
    }
  }

  function liveCount(resourceClass: string): number {
    return Object.values(state.records).filter(
      (r) => r.resourceClass === resourceClass && LIVE_STATES.includes(r.state),
    ).length;
  }

  /** After a claim, a refresh soon launches what the warm pool lacks (without making anyone wait). */
  function refillSoon(spec: FleetSpec, resourceClass: string): void {
    const cls = spec.resourceClasses.find((c) => c.name === resourceClass);
    const warm = Object.values(state.records).filter(
      (r) => r.resourceClass === resourceClass && (r.state === 'idle' || r.state === 'created') && r.claimedBy === null,
    ).length;
    if (cls && warm < cls.minIdle) requested++;
  }

  function provisioned(r: InstanceRecord, launched: boolean): ProvisionResult {
    return {
      instanceId: r.instanceId,
      runner: r.runner ?? '',
      resourceClass: r.resourceClass,
      taskQueue: runnerTaskQueue(r.runner ?? ''),
      launched,
    };
  }
}

function status(state: FleetState): FleetStatus {
  const spec = state.spec;
  const records = Object.values(state.records);
  return {
    name: state.name,
    applied: spec !== null,
    pools: (spec?.resourceClasses ?? []).map((c) => {
      const counts: Record<string, number> = {};
      for (const r of records) if (r.resourceClass === c.name) counts[r.state] = (counts[r.state] ?? 0) + 1;
      return {
        resourceClass: c.name,
        taskQueue: state.pools[c.name]?.taskQueue ?? poolTaskQueue(poolName(state.name, c.name)),
        minIdle: c.minIdle,
        maxInstances: c.maxInstances,
        counts,
      };
    }),
    records,
    registrations: state.registrations,
    tokens: state.tokens.map(({ hash: _hash, ...t }) => t),
    lastRefresh: state.lastRefresh,
    refreshes: state.refreshes,
  };
}

function invalid(code: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: isErrorCode(code) ? code : 'Internal', message, nonRetryable: true });
}
