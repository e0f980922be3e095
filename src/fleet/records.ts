/**
 * The instance records' state machine. Every transition is a synchronous check-and-set on the
 * fleet state: the workflow runs handlers one at a time, so a transition that checks its
 * condition and writes without awaiting in between is atomic. Conditional transitions name the
 * `version` they saw; a claim or renewal in between bumps it and the stale transition loses.
 *
 * Times are ISO strings; `now` is passed in (workflow time). Sandbox-safe.
 */
import type { FleetSpec } from './schema';
import { LIVE_STATES, type FleetState, type InstanceRecord, type RunnerRegistered, type TokenRecord } from './types';

export type Outcome<T = InstanceRecord> = { ok: true; value: T } | { ok: false; reason: string };

const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
const no = <T = InstanceRecord>(reason: string): Outcome<T> => ({ ok: false, reason });

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString();

function transition(r: InstanceRecord, state: InstanceRecord['state'], threshold: number, now: string): InstanceRecord {
  r.state = state;
  r.threshold = iso(threshold);
  r.stateSince = now;
  r.version++;
  return r;
}

/** End of an instance's life: launched + maxLifetime. */
export function lifetimeEnd(spec: FleetSpec, r: InstanceRecord): number {
  return ms(r.launchedAt) + spec.maxLifetime;
}

/** An idle instance expires after maxIdleTime, and never later than its lifetime. */
function idleThreshold(spec: FleetSpec, r: InstanceRecord, now: string): number {
  return Math.min(ms(now) + spec.maxIdleTime, lifetimeEnd(spec, r));
}

/** A launched instance, waiting for its runner (optionally reserved for one provision request). */
export function addLaunched(
  s: FleetState,
  spec: FleetSpec,
  i: { instanceId: string; resourceClass: string; launchedAt: string; claimedBy?: string | null },
): InstanceRecord {
  const r: InstanceRecord = {
    instanceId: i.instanceId,
    resourceClass: i.resourceClass,
    state: 'created',
    threshold: iso(ms(i.launchedAt) + spec.registrationTimeout),
    launchedAt: i.launchedAt,
    stateSince: i.launchedAt,
    version: 1,
    runner: null,
    claimedBy: i.claimedBy ?? null,
    reason: null,
    terminateAttempts: 0,
  };
  s.records[r.instanceId] = r;
  return r;
}

/**
 * An instance's runner registered (the registry checked the token): its record goes from created
 * to idle. Idempotent; refused for an instance the fleet does not hold or is terminating.
 */
export function registered(
  s: FleetState,
  spec: FleetSpec,
  req: RunnerRegistered,
  now: string,
): Outcome<InstanceRecord> {
  const r = s.records[req?.instanceId];
  if (!r) return no(`instance ${String(req?.instanceId)} is not part of fleet "${s.name}"`);
  if (r.state === 'terminated') return no(`instance ${r.instanceId} is being terminated`);
  if (r.runner !== null && r.runner !== req.runner)
    return no(`instance ${r.instanceId} already has runner "${r.runner}"`);
  s.registrations[req.runner] = {
    runner: req.runner,
    instanceId: r.instanceId,
    tokenId: String(req.tokenId ?? ''),
    registeredAt: now,
  };
  r.runner = req.runner;
  if (r.state === 'created') transition(r, 'idle', idleThreshold(spec, r, now), now);
  return ok(r);
}

/**
 * The instance's runner was purged: the instance can serve nothing any more. Phase 1 of its
 * termination, unconditionally (the runner will not come back); a task on it has been told.
 */
export function runnerGone(s: FleetState, instanceId: string, reason: string, now: string): Outcome {
  const r = s.records[instanceId];
  if (!r) return no(`no instance ${String(instanceId)}`);
  if (!LIVE_STATES.includes(r.state)) return no(`instance ${instanceId} is ${r.state}`);
  r.reason = reason;
  r.claimedBy = null;
  return ok(transition(r, 'terminated', ms(now), now));
}

/**
 * Claims an idle instance of a class for a request: one not past its lifetime, not reserved for
 * another request. Prefers the instance reserved for this request, then the longest idle.
 */
export function claim(
  s: FleetState,
  spec: FleetSpec,
  resourceClass: string,
  requestId: string,
  leaseMs: number,
  now: string,
): Outcome {
  const candidates = Object.values(s.records).filter(
    (r) =>
      r.resourceClass === resourceClass &&
      r.state === 'idle' &&
      lifetimeEnd(spec, r) > ms(now) &&
      (r.claimedBy === null || r.claimedBy === requestId),
  );
  candidates.sort(
    (a, b) =>
      Number(b.claimedBy === requestId) - Number(a.claimedBy === requestId) || ms(a.stateSince) - ms(b.stateSince),
  );
  const r = candidates[0];
  if (!r) return no(`no idle instance of class "${resourceClass}"`);
  return claimInstance(s, spec, r.instanceId, requestId, leaseMs, now);
}

/** Claims one instance: it must be idle and not past its lifetime (an idle timeout is forgiven). */
export function claimInstance(
  s: FleetState,
  spec: FleetSpec,
  instanceId: string,
  requestId: string,
  leaseMs: number,
  now: string,
): Outcome {
  const r = s.records[instanceId];
  if (!r) return no(`no instance ${instanceId}`);
  if (r.state !== 'idle') return no(`instance ${instanceId} is ${r.state}`);
  if (lifetimeEnd(spec, r) <= ms(now)) return no(`instance ${instanceId} is past its lifetime`);
  if (r.claimedBy !== null && r.claimedBy !== requestId)
    return no(`instance ${instanceId} is reserved for ${r.claimedBy}`);
  r.claimedBy = requestId;
  // A claimed instance lives until its lease ends; the runner renews it while the task runs.
  return ok(transition(r, 'claimed', ms(now) + leaseMs, now));
}

function held(s: FleetState, instanceId: string, requestId: string): Outcome {
  const r = s.records[instanceId];
  if (!r) return no(`no instance ${instanceId}`);
  if (r.state !== 'claimed' && r.state !== 'running') return no(`instance ${instanceId} is ${r.state}`);
  if (r.claimedBy !== requestId)
    return no(`instance ${instanceId} is held by ${r.claimedBy ?? 'nobody'}, not ${requestId}`);
  return ok(r);
}

/** The task started on the claimed instance. */
export function markRunning(
  s: FleetState,
  instanceId: string,
  requestId: string,
  leaseMs: number,
  now: string,
): Outcome {
  const h = held(s, instanceId, requestId);
  if (!h.ok) return h;
  return ok(transition(h.value, 'running', ms(now) + leaseMs, now));
}

/** Extends a claim's lease: a maintenance decision made before it loses (the version moved). */
export function renew(s: FleetState, instanceId: string, requestId: string, leaseMs: number, now: string): Outcome {
  const h = held(s, instanceId, requestId);
  if (!h.ok) return h;
  const r = h.value;
  r.threshold = iso(ms(now) + leaseMs);
  r.version++;
  return ok(r);
}

/** After the task: back to idle, or marked terminated (phase 1) when past its lifetime. */
export function release(s: FleetState, spec: FleetSpec, instanceId: string, requestId: string, now: string): Outcome {
  const h = held(s, instanceId, requestId);
  if (!h.ok) return h;
  const r = h.value;
  r.claimedBy = null;
  if (lifetimeEnd(spec, r) <= ms(now)) {
    r.reason = 'past its lifetime at release';
    return ok(transition(r, 'terminated', ms(now), now));
  }
  return ok(transition(r, 'idle', idleThreshold(spec, r, now), now));
}

/** Live records past their threshold, with the version seen: candidates for phase 1. */
export function expiredRecords(s: FleetState, now: string): { instanceId: string; version: number }[] {
  return Object.values(s.records)
    .filter((r) => LIVE_STATES.includes(r.state) && ms(r.threshold) <= ms(now))
    .map((r) => ({ instanceId: r.instanceId, version: r.version }));
}

/**
 * Phase 1: marks a record terminated, only if nothing changed since maintenance saw it (same
 * version) and it is still live and past its threshold. Loses to a concurrent claim or renewal.
 */
export function markTerminated(
  s: FleetState,
  instanceId: string,
  seenVersion: number,
  reason: string,
  now: string,
): Outcome {
  const r = s.records[instanceId];
  if (!r) return no(`no instance ${instanceId}`);
  if (r.version !== seenVersion) return no(`instance ${instanceId} changed (version ${r.version}, saw ${seenVersion})`);
  if (!LIVE_STATES.includes(r.state)) return no(`instance ${instanceId} is ${r.state}`);
  if (ms(r.threshold) > ms(now)) return no(`instance ${instanceId} is not past its threshold`);
  r.reason = reason;
  return ok(transition(r, 'terminated', ms(now), now));
}

/** Why a record is past its threshold, in words. */
export function expiryReason(spec: FleetSpec | null, r: InstanceRecord): string {
  if (r.state === 'created') return 'its runner did not register in time';
  if (r.state === 'idle')
    return spec && lifetimeEnd(spec, r) <= ms(r.threshold) ? 'past its lifetime' : 'idle too long';
  return 'its lease ran out';
}

/** What phase 3 deleted here (the registry runner is purged before, by an activity). */
export interface Artifacts {
  record: boolean;
  registrations: string[];
}

function deleteArtifacts(s: FleetState, instanceId: string): Artifacts {
  const out: Artifacts = { record: instanceId in s.records, registrations: [] };
  delete s.records[instanceId];
  for (const [runner, reg] of Object.entries(s.registrations)) {
    if (reg.instanceId === instanceId) {
      delete s.registrations[runner];
      out.registrations.push(runner);
    }
  }
  return out;
}

/** Phase 3: EC2 confirmed the termination; the record and its artifacts go. Only from `terminated`. */
export function confirmTerminated(s: FleetState, instanceId: string): Outcome<Artifacts> {
  const r = s.records[instanceId];
  if (!r) return no(`no instance ${instanceId}`);
  if (r.state !== 'terminated') return no(`instance ${instanceId} is ${r.state}, not terminated`);
  return ok(deleteArtifacts(s, instanceId));
}

/** The instance is gone from EC2 (terminated by someone else): close its record, if unchanged. */
export function closeGone(s: FleetState, instanceId: string, seenVersion: number): Outcome<Artifacts> {
  const r = s.records[instanceId];
  if (!r) return no(`no instance ${instanceId}`);
  if (r.version !== seenVersion) return no(`instance ${instanceId} changed`);
  return ok(deleteArtifacts(s, instanceId));
}

/** Adds a minted token and forgets expired ones. */
export function addToken(s: FleetState, t: TokenRecord, now: string): void {
  s.tokens = [...s.tokens.filter((x) => ms(x.expiresAt) > ms(now)), t];
}

/** A new token is due when none exists or the newest is older than the rotation period. */
export function tokenDue(s: FleetState, spec: FleetSpec, now: string): boolean {
  const newest = s.tokens.reduce((m, t) => Math.max(m, ms(t.mintedAt)), -Infinity);
  return !Number.isFinite(newest) || newest + spec.token.rotation <= ms(now);
}

/** The newest valid token (what launches put in user data). */
export function currentToken(s: FleetState, now: string): TokenRecord | null {
  const valid = s.tokens.filter((t) => ms(t.expiresAt) > ms(now));
  return valid.sort((a, b) => ms(b.mintedAt) - ms(a.mintedAt))[0] ?? null;
}
