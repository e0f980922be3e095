/**
 * The state of one runner in the registry and every change to it, as pure functions: the runner
 * workflow (workflows/runner.ts) registers handlers that call these, unit tests drive them
 * directly. Plain JSON (it crosses continue-as-new) and sandbox-safe: times come in as ISO
 * strings or epoch milliseconds from the caller (workflow time in the workflow).
 *
 * Glossary
 * - Record: what `runner describe` shows (`RunnerRecord`, the `record` query).
 * - Token: a registration token `rfr_<id>_<seed>` holds an Ed25519 key; the registry keeps its
 *   id and public key only, in the grant the operator key signed (src/security/statements.ts).
 *   One token at a time: issuing a new one kills the old one. A token registers one runner once.
 *   (Histories from before kept the token's sha256 instead: `tokenHash`.)
 * - Identity: the runner id, X25519 public key and Ed25519 signing key the runner made on its
 *   first start; kept from registration on, and checked on every `connect`.
 * - Admission: the grant and the token key's proof over the identity. The workflow checks the
 *   proof (the state is not trusted: anyone with namespace access can start this workflow); the
 *   control worker checks the whole admission again before it seals a data key.
 * - Session: the long activity the registry keeps on the runner's own queue. Its generation
 *   counts sessions; a new generation is how the runner learns of enable, disable, new settings
 *   and deletion.
 * - Status: `registered` (created, waiting for its runner), `ready` / `disabled` (its session
 *   heartbeats; disabled: it takes no new work), `idle` (no heartbeat; a session waits for it),
 *   `lost` (it did not take that session either), `deleted` (purged).
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { z } from 'zod';
import type { ErrorCode } from '../errors';
import { DRIVERS } from '../types';
import { labelProblem, nameProblem, poolProblem } from './names';
import type {
  AdminRequest,
  Admission,
  FleetLink,
  ConnectRequest,
  IssueTokenRequest,
  LostTaskRef,
  RegisterRequest,
  RunnerRecord,
  RunnerSettings,
  RunnerStatus,
  RunnerWorkflowInput,
  SessionRequest,
} from './types';
import {
  CLOCK_SKEW_MS,
  grantProblem,
  isKey,
  proofProblem,
  signatureProblem,
  verifyStatement,
  type OperatorSignature,
  type TokenGrant,
} from '../security/statements';

/**
 * Defaults of what a runner is handed. The watchdog also sets the registry's own patience:
 * a session without heartbeat for 2/3 of it makes the runner `idle` (20 s), and a session not
 * taken for 4/3 of it after that makes it `lost` (40 s).
 */
export const DEFAULT_SETTINGS: RunnerSettings = {
  slots: 4,
  evictionMs: 60_000,
  heartbeatMs: 5_000,
  pingMs: 10_000,
  watchdogMs: 30_000,
};

/** Status changes kept in the record: enough to explain the present, bounded across continue-as-new. */
export const MAX_HISTORY = 50;
/** Lost tasks kept (a run reports each one once; a runner rarely loses more than its slots). */
export const MAX_LOST_TASKS = 500;

const TOKEN_ID_RE = /^[a-f0-9]{8,32}$/;
const FLEET_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$/;
const INSTANCE_ID_RE = /^i-[0-9a-f]{8,32}$/;
const HASH_RE = /^[a-f0-9]{64}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** base64 of an X25519 SPKI DER key (44 bytes: 60 characters), with room for other encodings. */
const PUBLIC_KEY_RE = /^[A-Za-z0-9+/]{40,400}={0,2}$/;

/** The workflow's whole state: the record, and what the record must not show. */
export interface RegistryState {
  record: RunnerRecord;
  /** sha256 hex of the current token, for tokens issued before operator-signed grants; else null. */
  tokenHash: string | null;
  /** The current token's grant and the operator's signature of it; null when there is none. */
  grant?: { grant: TokenGrant; signature: string } | null;
  /** What admitted the registered identity: the control worker checks it before sealing keys. */
  admission?: Admission | null;
  /** Operator command nonces seen within the clock-skew window (a signed command applies once). */
  nonces?: { nonce: string; at: string }[];
  /** Generation of the current (or next) session; 0 before the first. */
  generation: number;
}

/** A refusal: the code of the ApplicationFailure the workflow raises, and its message. */
export interface Problem {
  code: ErrorCode;
  message: string;
}

/** Timings the registry derives from a runner's settings. */
export interface SessionTimings {
  /** No heartbeat for this long: the runner is idle. */
  heartbeatTimeoutMs: number;
  /** An idle runner that does not take its next session in this long is lost. */
  lostAfterMs: number;
}

export function timings(settings: RunnerSettings): SessionTimings {
  return {
    heartbeatTimeoutMs: Math.round((settings.watchdogMs * 2) / 3),
    lostAfterMs: Math.round((settings.watchdogMs * 4) / 3),
  };
}

// --- names and input -----------------------------------------------------------------------

export { labelProblem, nameProblem, poolProblem };

/**
 * Settings as `configure` and `runner settings --set` take them: a strict partial, each key
 * checked with its reason. The heartbeat must fit the watchdog three times, so that two missed
 * heartbeats never make a runner idle.
 */
export const SettingsPatchSchema = z
  .strictObject({
    slots: z.number().int().min(1).max(256),
    evictionMs: z.number().int().min(1_000).max(3_600_000),
    heartbeatMs: z.number().int().min(200).max(60_000),
    pingMs: z.number().int().min(200).max(600_000),
    watchdogMs: z.number().int().min(1_000).max(600_000),
  })
  .partial();

/** The settings after a patch, or the problem naming the bad key. */
export function applySettings(
  current: RunnerSettings,
  patch: unknown,
): { ok: true; settings: RunnerSettings } | { ok: false; problem: string } {
  const parsed = SettingsPatchSchema.safeParse(patch ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key =
      issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue?.path.map(String).join('.') || 'settings';
    return {
      ok: false,
      problem: `setting ${key}: ${issue?.message ?? 'invalid'} (settings: ${Object.keys(DEFAULT_SETTINGS).join(', ')})`,
    };
  }
  const next: RunnerSettings = { ...current };
  for (const [k, v] of Object.entries(parsed.data)) if (v !== undefined) next[k as keyof RunnerSettings] = v;
  if (next.heartbeatMs * 3 > next.watchdogMs) {
    return {
      ok: false,
      problem: `setting heartbeatMs: ${next.heartbeatMs} must be at most a third of watchdogMs (${next.watchdogMs})`,
    };
  }
  return { ok: true, settings: next };
}

/** Why the workflow input is not acceptable, or null. */
export function inputProblem(input: RunnerWorkflowInput | undefined): string | null {
  const bad = nameProblem(input?.name) ?? poolProblem(input?.pool);
  if (bad) return bad;
  for (const [k, v] of Object.entries(input?.labels ?? {})) {
    const b = typeof v === 'string' ? labelProblem(k, v) : `label ${k} must be a string`;
    if (b) return b;
  }
  if (input?.fleet !== undefined) {
    const f = input.fleet as Partial<FleetLink> | null;
    if (!f || typeof f.name !== 'string' || !FLEET_NAME_RE.test(f.name))
      return `fleet.name ${JSON.stringify(f?.name)} must be a fleet name (1-41 letters, digits, "_" or "-")`;
    if (typeof f.instanceId !== 'string' || !INSTANCE_ID_RE.test(f.instanceId))
      return `fleet.instanceId ${JSON.stringify(f.instanceId)} must be an EC2 instance id like i-0123456789abcdef0`;
  }
  const s = applySettings(DEFAULT_SETTINGS, input?.settings ?? {});
  return s.ok ? null : s.problem;
}

export function initialState(input: RunnerWorkflowInput, now: string): RegistryState {
  const s = applySettings(DEFAULT_SETTINGS, input.settings ?? {});
  const record: RunnerRecord = {
    name: input.name,
    pool: input.pool,
    labels: { ...(input.labels ?? {}) },
    temporary: input.temporary === true,
    fleet: input.fleet ? { name: input.fleet.name, instanceId: input.fleet.instanceId } : null,
    status: 'registered',
    enabled: true,
    settings: s.ok ? s.settings : { ...DEFAULT_SETTINGS },
    token: null,
    identity: null,
    bootId: null,
    lastSeenAt: null,
    reason: 'waiting for the runner to register',
    lostTasks: [],
    createdAt: now,
    history: [{ at: now, status: 'registered', reason: 'created', by: null }],
  };
  return { record, tokenHash: null, grant: null, admission: null, nonces: [], generation: 0 };
}

/** A state carried over continue-as-new, or null when it is not one. */
export function resumedState(resume: unknown): RegistryState | null {
  if (resume === null || typeof resume !== 'object') return null;
  const r = resume as Partial<RegistryState>;
  if (!r.record || typeof r.generation !== 'number') return null;
  return {
    record: r.record,
    tokenHash: r.tokenHash ?? null,
    grant: r.grant ?? null,
    admission: r.admission ?? null,
    nonces: Array.isArray(r.nonces) ? r.nonces : [],
    generation: r.generation,
  };
}

// --- status ----------------------------------------------------------------------------------

export function isRegistered(state: RegistryState): boolean {
  return state.record.identity !== null && state.record.status !== 'deleted';
}

export function isDeleted(state: RegistryState): boolean {
  return state.record.status === 'deleted';
}

/** True while the runner holds a session (its heartbeats came in). */
export function isConnected(state: RegistryState): boolean {
  return state.record.status === 'ready' || state.record.status === 'disabled';
}

function setStatus(state: RegistryState, status: RunnerStatus, now: string, reason: string | null, by: string | null) {
  const r = state.record;
  const changed = r.status !== status || r.reason !== reason;
  r.status = status;
  r.reason = reason;
  if (!changed) return;
  r.history.push({ at: now, status, reason, by });
  if (r.history.length > MAX_HISTORY) r.history.splice(0, r.history.length - MAX_HISTORY);
}

/** What a connected runner's status is: ready, or disabled when it takes no work. */
function onlineStatus(state: RegistryState): RunnerStatus {
  return state.record.enabled ? 'ready' : 'disabled';
}

/** The next session's generation (the current one is cancelled or ended). */
export function nextGeneration(state: RegistryState): number {
  state.generation++;
  return state.generation;
}

/** What the runner is told by the session of the current generation. */
export function sessionRequest(state: RegistryState, deletion?: { by: string; reason: string }): SessionRequest {
  return {
    generation: state.generation,
    enabled: state.record.enabled && !isDeleted(state),
    settings: { ...state.record.settings },
    ...(deletion ? { delete: deletion } : {}),
  };
}

// --- tokens ----------------------------------------------------------------------------------

/**
 * Why a token is not admitted, or null. A token needs the operator's grant for exactly this
 * runner as it is recorded (name, pool, labels, temporary, slots), living at most 7 days. Whether
 * the operator really signed it is the control worker's check (the workflow does not hold the
 * operator key): a grant with a forged signature is recorded and admits nobody. `legacy` accepts
 * a sha256-only token, for histories recorded before grants.
 */
export function issueTokenProblem(
  state: RegistryState,
  req: IssueTokenRequest,
  nowMs: number,
  legacy = false,
): Problem | null {
  const r = state.record;
  if (isDeleted(state)) return { code: 'NotFound', message: `runner ${r.name} was deleted` };
  if (typeof req?.tokenId !== 'string' || !TOKEN_ID_RE.test(req.tokenId))
    return { code: 'InvalidArgument', message: 'a token id is 8-32 lowercase hex digits' };
  const expires = Date.parse(req.expiresAt);
  if (Number.isNaN(expires)) return { code: 'InvalidArgument', message: `expiresAt "${req.expiresAt}" is not a time` };
  if (expires <= nowMs)
    return { code: 'InvalidArgument', message: `the token would expire at once (${req.expiresAt})` };
  if (legacy && req.grant === undefined) {
    if (typeof req.tokenHash !== 'string' || !HASH_RE.test(req.tokenHash))
      return { code: 'InvalidArgument', message: 'a token hash is 64 lowercase hex digits (sha256)' };
    return null;
  }
  if (req.grant === undefined || typeof req.signature !== 'string')
    return {
      code: 'Unauthorized',
      message: `runner ${r.name}: a token needs a grant signed by the operator key (runfleet runner create|token sign it)`,
    };
  const bad = grantProblem(req.grant, nowMs);
  if (bad) return { code: 'InvalidArgument', message: bad };
  const g = req.grant;
  if (g.tokenId !== req.tokenId || Date.parse(g.expiresAt) !== expires)
    return { code: 'InvalidArgument', message: 'the grant is for another token (tokenId, expiresAt)' };
  const differs =
    g.runner !== r.name
      ? 'runner'
      : g.pool !== r.pool
        ? 'pool'
        : g.temporary !== r.temporary
          ? 'temporary'
          : g.slots !== r.settings.slots
            ? 'slots'
            : !sameLabels(g.labels, r.labels)
              ? 'labels'
              : null;
  if (differs)
    return {
      code: 'InvalidArgument',
      message: `the grant's ${differs} is not runner ${r.name}'s: sign a grant for the runner as it is recorded`,
    };
  return null;
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/** A new token: the previous one (if any) is dead from now on. */
export function issueToken(state: RegistryState, req: IssueTokenRequest, now: string): RunnerRecord {
  const signed = req.grant && typeof req.signature === 'string' ? { grant: req.grant, signature: req.signature } : null;
  state.tokenHash = signed ? null : (req.tokenHash ?? null);
  state.grant = signed;
  state.record.token = {
    id: req.tokenId,
    expiresAt: new Date(req.expiresAt).toISOString(),
    revoked: false,
    used: false,
    ...(signed ? { key: signed.grant.tokenKey } : {}),
  };
  state.record.history.push({
    at: now,
    status: state.record.status,
    reason: `token ${req.tokenId} issued`,
    by: req.by,
  });
  trimHistory(state);
  return state.record;
}

export function revokeTokenProblem(state: RegistryState): Problem | null {
  if (isDeleted(state)) return { code: 'NotFound', message: `runner ${state.record.name} was deleted` };
  if (state.record.token === null) return { code: 'InvalidState', message: `runner ${state.record.name} has no token` };
  if (state.record.token.revoked)
    return { code: 'InvalidState', message: `the token of runner ${state.record.name} is revoked already` };
  return null;
}

export function revokeToken(state: RegistryState, req: AdminRequest, now: string): RunnerRecord {
  const token = state.record.token;
  if (token) {
    token.revoked = true;
    state.record.history.push({
      at: now,
      status: state.record.status,
      reason: `token ${token.id} revoked${req.reason ? `: ${req.reason}` : ''}`,
      by: req.by,
    });
    trimHistory(state);
  }
  return state.record;
}

// --- register and connect ----------------------------------------------------------------------

/**
 * Why a registration is refused, or null. The runner proves it holds the token: the token key
 * signed its name, id, keys and the time (checked here with @noble/curves: deterministic, and
 * nothing secret reaches history). `tokenHash` is the sha256 hex of `req.token` for a token
 * issued before grants (the workflow computes it with `tokenSha256`); else null.
 */
/** sha256 hex of a token in clear (registrations from before grants), in the sandbox: @noble/hashes. */
export function tokenSha256(token: string): string {
  return bytesToHex(sha256(utf8ToBytes(token)));
}

export function registerProblem(
  state: RegistryState,
  req: RegisterRequest,
  tokenHash: string | null,
  nowMs: number,
): Problem | null {
  const name = state.record.name;
  if (isDeleted(state)) return { code: 'NotFound', message: `runner ${name} was deleted` };
  const token = state.record.token;
  if (token === null) return { code: 'TokenRejected', message: 'token rejected: unknown token' };
  const legacy = req?.proof === undefined && state.tokenHash !== null;
  if (legacy) {
    if (tokenHash === null || tokenHash !== state.tokenHash)
      return { code: 'TokenRejected', message: 'token rejected: unknown token' };
  } else if (!state.grant || req?.proof?.tokenId !== token.id) {
    return { code: 'TokenRejected', message: 'token rejected: unknown token' };
  }
  if (token.revoked) return { code: 'TokenRejected', message: 'token rejected: revoked' };
  if (token.used) return { code: 'TokenRejected', message: 'token rejected: already used' };
  if (Date.parse(token.expiresAt) <= nowMs)
    return { code: 'TokenRejected', message: `token rejected: expired at ${token.expiresAt}` };
  const bad = identityProblem(req);
  if (bad || legacy) return bad;
  return proofCheck(state, req, nowMs);
}

/** The token key's proof: well-formed, about this registration, recent, and signed by the token key. */
function proofCheck(state: RegistryState, req: RegisterRequest, nowMs: number): Problem | null {
  const p = req.proof;
  const bad = proofProblem(p);
  if (bad || !p) return { code: 'InvalidArgument', message: bad ?? 'no proof' };
  if (typeof req.signingKey !== 'string' || !isKey(req.signingKey))
    return { code: 'InvalidArgument', message: 'signingKey is not a base64 Ed25519 public key' };
  if (
    p.runner !== state.record.name ||
    p.runnerId !== req.runnerId ||
    p.publicKey !== req.publicKey ||
    p.signingKey !== req.signingKey
  )
    return { code: 'TokenRejected', message: 'token rejected: the proof is for another runner or identity' };
  if (Math.abs(Date.parse(p.at) - nowMs) > CLOCK_SKEW_MS)
    return {
      code: 'TokenRejected',
      message: `token rejected: the proof was made at ${p.at}, more than ${CLOCK_SKEW_MS / 60_000} minutes from now (check the runner's clock)`,
    };
  const grant = state.grant?.grant;
  if (!grant || typeof req.proofSignature !== 'string' || !verifyStatement(grant.tokenKey, p, req.proofSignature))
    return { code: 'TokenRejected', message: 'token rejected: the proof is not signed by the token' };
  return null;
}

function identityProblem(req: { runnerId?: unknown; publicKey?: unknown; drivers?: unknown }): Problem | null {
  if (typeof req?.runnerId !== 'string' || !UUID_RE.test(req.runnerId))
    return { code: 'InvalidArgument', message: `runnerId ${JSON.stringify(req?.runnerId)} is not a UUID` };
  if (req.publicKey !== undefined && (typeof req.publicKey !== 'string' || !PUBLIC_KEY_RE.test(req.publicKey)))
    return { code: 'InvalidArgument', message: 'publicKey is not a base64 X25519 public key' };
  if (!Array.isArray(req.drivers) || req.drivers.some((d) => !(DRIVERS as readonly unknown[]).includes(d)))
    return {
      code: 'InvalidArgument',
      message: `drivers ${JSON.stringify(req.drivers)}: each is one of ${DRIVERS.join(', ')}`,
    };
  return null;
}

/**
 * Marks the token used before anything else can run: of two registrations with one token, the
 * second is refused even while the first waits for its keys. `false` gives it back (sealing failed).
 */
export function spendToken(state: RegistryState, used = true): void {
  if (state.record.token) state.record.token.used = used;
}

/** The runner joins: the token is spent, the identity kept. The caller starts its session. */
export function register(state: RegistryState, req: RegisterRequest, now: string): void {
  const r = state.record;
  spendToken(state);
  r.identity = {
    runnerId: req.runnerId,
    publicKey: req.publicKey,
    ...(typeof req.signingKey === 'string' ? { signingKey: req.signingKey } : {}),
    version: String(req.version ?? ''),
    drivers: [...req.drivers],
    hostname: String(req.hostname ?? ''),
    registeredAt: now,
  };
  const g = state.grant;
  state.admission =
    g && req.proof && typeof req.proofSignature === 'string'
      ? { grant: g.grant, signature: g.signature, proof: req.proof, proofSignature: req.proofSignature }
      : null;
  r.bootId = null;
  r.lastSeenAt = now;
  nextGeneration(state);
  setStatus(state, onlineStatus(state), now, `registered from ${r.identity.hostname || 'an unnamed host'}`, null);
}

export function connectProblem(state: RegistryState, req: ConnectRequest): Problem | null {
  const name = state.record.name;
  if (isDeleted(state)) return { code: 'NotFound', message: `runner ${name} was deleted` };
  const identity = state.record.identity;
  if (identity === null)
    return {
      code: 'TokenRejected',
      message: `runner ${name} is not registered: start it with the token \`runfleet runner create\` printed`,
    };
  const bad = identityProblem(req);
  if (bad) return bad;
  if (req.runnerId !== identity.runnerId)
    return {
      code: 'TokenRejected',
      message: `runner ${name} is registered with another identity (${identity.runnerId}); issue a new token with \`runfleet runner token ${name}\``,
    };
  if (typeof req.bootId !== 'string' || req.bootId.length === 0 || req.bootId.length > 100)
    return { code: 'InvalidArgument', message: 'bootId must be a non-empty string' };
  return null;
}

/** A registered runner (re)starts; returns true when it is a new process (new boot id). */
export function connect(state: RegistryState, req: ConnectRequest, now: string): boolean {
  const r = state.record;
  const restarted = r.bootId !== req.bootId;
  if (r.identity) {
    r.identity.version = String(req.version ?? '');
    r.identity.drivers = [...req.drivers];
    r.identity.hostname = String(req.hostname ?? '');
  }
  r.bootId = req.bootId;
  r.lastSeenAt = now;
  if (restarted) nextGeneration(state);
  setStatus(state, onlineStatus(state), now, restarted ? 'connected (runner started)' : 'connected', null);
  return restarted;
}

// --- sessions ----------------------------------------------------------------------------------

/** The runner took the session of `generation`: it is back. Old generations change nothing. */
export function sessionOnline(
  state: RegistryState,
  sig: { runnerId: string; bootId: string; generation: number },
  now: string,
): boolean {
  const r = state.record;
  if (!isRegistered(state) || sig?.generation !== state.generation) return false;
  if (r.identity && sig.runnerId !== r.identity.runnerId) return false;
  if (typeof sig.bootId === 'string' && sig.bootId.length > 0) r.bootId = sig.bootId;
  r.lastSeenAt = now;
  setStatus(state, onlineStatus(state), now, null, null);
  return true;
}

/** The runner was seen (a ping answered, a session started). */
export function seen(state: RegistryState, now: string): void {
  if (isDeleted(state)) return;
  state.record.lastSeenAt = now;
  if (state.record.status === 'idle' || state.record.status === 'lost')
    setStatus(state, onlineStatus(state), now, null, null);
}

/** The session stopped heartbeating (or nobody took it while the runner looked connected). */
export function sessionSilent(state: RegistryState, now: string, why: string): void {
  if (!isRegistered(state) || state.record.status === 'lost') return;
  setStatus(state, 'idle', now, why, null);
}

/**
 * Nobody took the session an idle runner was offered. Returns true when the runner must be
 * purged now (a temporary runner: it will not come back).
 */
export function sessionNotTaken(state: RegistryState, now: string, why: string): boolean {
  if (!isRegistered(state)) return false;
  setStatus(state, 'lost', now, why, null);
  return state.record.temporary;
}

/**
 * How long the next session may wait to be taken before the runner is marked idle (a connected
 * runner) or lost (an idle one); null for a lost runner (it waits as long as it takes).
 */
export function scheduleToStartMs(state: RegistryState): number | null {
  const t = timings(state.record.settings);
  switch (state.record.status) {
    case 'lost':
      return null;
    case 'idle':
      return t.lostAfterMs;
    default:
      return t.heartbeatTimeoutMs;
  }
}

// --- operator commands -------------------------------------------------------------------------

export function adminProblem(state: RegistryState): Problem | null {
  if (isDeleted(state)) return { code: 'NotFound', message: `runner ${state.record.name} was deleted` };
  return null;
}

/**
 * Why an operator command's signature is not acceptable here, or null: missing, malformed, made
 * more than the clock skew from now, or its nonce used already. Whether the operator key made it
 * is the control worker's check (`verifyOperatorCommand`), before the command applies.
 */
export function operatorProblem(
  state: RegistryState,
  sig: OperatorSignature | undefined,
  nowMs: number,
): Problem | null {
  const bad = signatureProblem(sig, nowMs);
  if (bad) return { code: 'Unauthorized', message: `runner ${state.record.name}: ${bad}` };
  if ((state.nonces ?? []).some((n) => n.nonce === sig?.nonce))
    return { code: 'Unauthorized', message: `runner ${state.record.name}: this signed command was used already` };
  return null;
}

/** Forgets a nonce whose command did not verify: a tampered copy must not burn the real command. */
export function releaseNonce(state: RegistryState, sig: OperatorSignature): void {
  state.nonces = (state.nonces ?? []).filter((n) => n.nonce !== sig.nonce);
}

/** Remembers a command's nonce (within the window a signature is accepted in). */
export function spendNonce(state: RegistryState, sig: OperatorSignature, nowMs: number): void {
  const kept = (state.nonces ?? []).filter((n) => Date.parse(n.at) > nowMs - 2 * CLOCK_SKEW_MS);
  kept.push({ nonce: sig.nonce, at: sig.at });
  state.nonces = kept;
}

/** Enables or disables the runner; true when that changed anything (a new session is due). */
export function setEnabled(state: RegistryState, enabled: boolean, req: AdminRequest, now: string): boolean {
  const r = state.record;
  if (r.enabled === enabled) return false;
  r.enabled = enabled;
  const why = `${enabled ? 'enabled' : 'disabled'}${req.reason ? `: ${req.reason}` : ''}`;
  if (isConnected(state)) setStatus(state, onlineStatus(state), now, why, req.by);
  else {
    r.history.push({ at: now, status: r.status, reason: why, by: req.by });
    trimHistory(state);
  }
  if (isRegistered(state)) nextGeneration(state);
  return true;
}

export function configureProblem(state: RegistryState, req: Partial<RunnerSettings> & AdminRequest): Problem | null {
  const bad = adminProblem(state);
  if (bad) return bad;
  const { by: _by, reason: _reason, operator: _operator, ...patch } = req ?? ({} as AdminRequest);
  const s = applySettings(state.record.settings, patch);
  return s.ok ? null : { code: 'InvalidArgument', message: s.problem };
}

export function configure(state: RegistryState, req: Partial<RunnerSettings> & AdminRequest, now: string): void {
  const { by, reason, operator: _operator, ...patch } = req;
  const s = applySettings(state.record.settings, patch);
  if (!s.ok) return;
  const changed = Object.entries(patch).filter(
    ([k, v]) => v !== undefined && state.record.settings[k as keyof RunnerSettings] !== v,
  );
  state.record.settings = s.settings;
  if (changed.length === 0) return;
  state.record.history.push({
    at: now,
    status: state.record.status,
    reason: `settings: ${changed.map(([k, v]) => `${k}=${String(v)}`).join(', ')}${reason ? ` (${reason})` : ''}`,
    by,
  });
  trimHistory(state);
  if (isRegistered(state)) nextGeneration(state);
}

export function pingProblem(state: RegistryState): Problem | null {
  const bad = adminProblem(state);
  if (bad) return bad;
  if (state.record.identity === null)
    return { code: 'InvalidState', message: `runner ${state.record.name} has not registered yet: nothing to ping` };
  return null;
}

/**
 * Removes the runner from the fleet. Returns the lost tasks whose runs must be told, and
 * whether a connected runner must be told to wipe itself (its next session carries `delete`).
 */
export function purge(state: RegistryState, req: AdminRequest, now: string): { notify: LostTaskRef[]; wipe: boolean } {
  const wipe = isConnected(state);
  const notify = [...state.record.lostTasks];
  state.record.enabled = false;
  setStatus(state, 'deleted', now, req.reason?.trim() || 'purged', req.by);
  state.tokenHash = null;
  state.grant = null;
  if (state.record.token) state.record.token.revoked = true;
  if (wipe) nextGeneration(state);
  return { notify, wipe };
}

/** Adds a note to the history without changing the status (purge progress, restarts). */
export function note(state: RegistryState, now: string, reason: string, by: string | null = null): void {
  state.record.history.push({ at: now, status: state.record.status, reason, by });
  trimHistory(state);
}

// --- lost tasks ----------------------------------------------------------------------------------

function sameTask(a: LostTaskRef, b: LostTaskRef): boolean {
  return a.runWorkflowId === b.runWorkflowId && a.task === b.task;
}

export function lostTaskProblem(ref: unknown): string | null {
  const r = ref as Partial<LostTaskRef> | null;
  if (!r || typeof r.runWorkflowId !== 'string' || r.runWorkflowId.length === 0 || typeof r.task !== 'string')
    return 'a lost task is {runWorkflowId, task, attempt}';
  return null;
}

/** A run says one of its tasks is lost on this runner (kept once per run and task). */
export function taskLost(state: RegistryState, ref: LostTaskRef): void {
  if (lostTaskProblem(ref)) return;
  const tasks = state.record.lostTasks;
  const i = tasks.findIndex((t) => sameTask(t, ref));
  const entry = { runWorkflowId: ref.runWorkflowId, task: ref.task, attempt: Number(ref.attempt) || 0 };
  if (i >= 0) tasks[i] = entry;
  else tasks.push(entry);
  if (tasks.length > MAX_LOST_TASKS) tasks.splice(0, tasks.length - MAX_LOST_TASKS);
}

/** A run found its task again (the runner came back with it). */
export function taskFound(state: RegistryState, ref: LostTaskRef): void {
  if (lostTaskProblem(ref)) return;
  state.record.lostTasks = state.record.lostTasks.filter((t) => !sameTask(t, ref));
}

function trimHistory(state: RegistryState): void {
  const h = state.record.history;
  if (h.length > MAX_HISTORY) h.splice(0, h.length - MAX_HISTORY);
}
