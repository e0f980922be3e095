import { describe, expect, it } from 'vitest';
import * as st from '../../src/registry/state';
import { createRegistrationToken, registrationProof, tokenGrant, tokenHash } from '../../src/registry/token';
import { generateSigningKey, signStatement } from '../../src/security/operator';
import type { IssueTokenRequest, RegisterRequest } from '../../workflows/runner-messages';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const RUNNER_ID = '7d2c1a4e-1b2c-4d5e-8f90-123456789abc';
const PUBLIC_KEY = Buffer.alloc(44, 7).toString('base64');
const OPERATOR = generateSigningKey();
const SIGNING = generateSigningKey();

function fresh(extra: Partial<Parameters<typeof st.initialState>[0]> = {}) {
  return st.initialState({ name: 'r1', pool: 'linux', ...extra }, at(0));
}

/** An operator-signed token request for the runner as `state` records it. */
function issue(state: st.RegistryState, t = createRegistrationToken(), expiresAt = at(3600)): IssueTokenRequest {
  const r = state.record;
  const grant = tokenGrant({ ...r, slots: r.settings.slots }, t, at(0), expiresAt);
  return { tokenId: t.id, expiresAt, by: 'ann', grant, signature: signStatement(OPERATOR.seed, grant) };
}

function withToken(extra: Partial<Parameters<typeof st.initialState>[0]> = {}) {
  const state = fresh(extra);
  const t = createRegistrationToken();
  st.issueToken(state, issue(state, t), at(1));
  return { state, token: t.token };
}

/** A registration proved with `token` at T0 (the unit tests' now). */
function req(token: string, extra: Partial<RegisterRequest> = {}, name = 'r1'): RegisterRequest {
  const proof = registrationProof(
    token,
    {
      name,
      runnerId: extra.runnerId ?? RUNNER_ID,
      publicKey: extra.publicKey ?? PUBLIC_KEY,
      signingKey: SIGNING.publicKey,
    },
    new Date(T0),
  );
  return {
    ...proof,
    runnerId: RUNNER_ID,
    publicKey: PUBLIC_KEY,
    version: '1.0',
    drivers: ['process'],
    hostname: 'box',
    ...extra,
  };
}

function registered(extra: Partial<Parameters<typeof st.initialState>[0]> = {}) {
  const { state, token } = withToken(extra);
  st.register(state, req(token), at(2));
  return state;
}

describe('registry state', () => {
  it('starts registered, waiting for its runner, with default settings', () => {
    const s = fresh({ labels: { arch: 'arm64' }, settings: { slots: 8 } });
    expect(s.record).toMatchObject({
      status: 'registered',
      enabled: true,
      identity: null,
      token: null,
      labels: { arch: 'arm64' },
    });
    expect(s.record.settings).toEqual({ ...st.DEFAULT_SETTINGS, slots: 8 });
    expect(st.timings(s.record.settings)).toEqual({ heartbeatTimeoutMs: 20_000, lostAfterMs: 40_000 });
    expect(st.isRegistered(s)).toBe(false);
  });

  it('checks the workflow input, naming what is wrong', () => {
    expect(st.inputProblem({ name: 'ok', pool: 'p' })).toBeNull();
    expect(st.inputProblem({ name: 'bad name', pool: 'p' })).toMatch(/runner name/);
    expect(st.inputProblem({ name: 'ok', pool: '' })).toMatch(/pool/);
    expect(st.inputProblem({ name: 'ok', pool: 'p', labels: { 'a b': 'x' } })).toMatch(/label key/);
    expect(st.inputProblem({ name: 'ok', pool: 'p', settings: { slots: 0 } })).toMatch(/setting slots/);
    const fleet = { name: 'ci', instanceId: 'i-0123456789abcdef0' };
    expect(st.inputProblem({ name: 'ok', pool: 'p', fleet })).toBeNull();
    expect(st.inputProblem({ name: 'ok', pool: 'p', fleet: { ...fleet, name: 'a b' } })).toMatch(/^fleet\.name/);
    expect(st.inputProblem({ name: 'ok', pool: 'p', fleet: { ...fleet, instanceId: 'vm-1' } })).toMatch(
      /^fleet\.instanceId "vm-1" must be an EC2 instance id/,
    );
    expect(st.initialState({ name: 'ok', pool: 'p', fleet }, '2026-01-01T00:00:00Z').record.fleet).toEqual(fleet);
    expect(st.initialState({ name: 'ok', pool: 'p' }, '2026-01-01T00:00:00Z').record.fleet).toBeNull();
  });

  it('validates settings patches by key, and keeps the heartbeat within a third of the watchdog', () => {
    expect(st.applySettings(st.DEFAULT_SETTINGS, { slots: 8 })).toEqual({
      ok: true,
      settings: { ...st.DEFAULT_SETTINGS, slots: 8 },
    });
    const unknown = st.applySettings(st.DEFAULT_SETTINGS, { slotz: 8 });
    expect(unknown.ok || unknown.problem).toMatch(/setting slotz/);
    const bad = st.applySettings(st.DEFAULT_SETTINGS, { evictionMs: 'x' });
    expect(bad.ok || bad.problem).toMatch(/setting evictionMs/);
    const tight = st.applySettings(st.DEFAULT_SETTINGS, { heartbeatMs: 20_000 });
    expect(tight.ok || tight.problem).toMatch(/heartbeatMs: 20000 must be at most a third of watchdogMs/);
  });

  it('issues tokens (the old one dies) and checks their shape', () => {
    const s = fresh();
    expect(st.issueTokenProblem(s, { ...issue(s), tokenId: 'XYZ' }, T0)?.code).toBe('InvalidArgument');
    expect(st.issueTokenProblem(s, { ...issue(s), expiresAt: at(-1) }, T0)?.message).toMatch(/expire at once/);
    const first = createRegistrationToken();
    const second = createRegistrationToken();
    st.issueToken(s, issue(s, first, at(100)), at(1));
    st.issueToken(s, issue(s, second, at(100)), at(2));
    expect(s.record.token).toMatchObject({ id: second.id, key: second.publicKey });
    expect(st.registerProblem(s, req(first.token), null, T0)?.message).toBe('token rejected: unknown token');
    expect(st.registerProblem(s, req(second.token), null, T0)).toBeNull();
    expect(s.record.history.at(-1)).toMatchObject({ reason: `token ${second.id} issued`, by: 'ann' });
  });

  it('admits a token only with an operator grant for this runner as recorded, living at most 7 days', () => {
    const s = fresh({ labels: { os: 'linux' } });
    const t = createRegistrationToken();
    const { grant: _g, signature: _s, ...bare } = issue(s, t);
    expect(st.issueTokenProblem(s, bare, T0)?.code).toBe('Unauthorized');
    // A sha256 token (the form before grants) is taken only where old histories replay.
    expect(st.issueTokenProblem(s, { ...bare, tokenHash: tokenHash(t.token) }, T0)?.code).toBe('Unauthorized');
    expect(st.issueTokenProblem(s, { ...bare, tokenHash: tokenHash(t.token) }, T0, true)).toBeNull();
    const good = issue(s, t);
    expect(st.issueTokenProblem(s, good, T0)).toBeNull();
    const other = { ...good, grant: { ...good.grant!, pool: 'gpu' } };
    expect(st.issueTokenProblem(s, other, T0)?.message).toMatch(/grant's pool is not runner r1's/);
    const labels = { ...good, grant: { ...good.grant!, labels: {} } };
    expect(st.issueTokenProblem(s, labels, T0)?.message).toMatch(/grant's labels/);
    const renamed = { ...good, grant: { ...good.grant!, runner: 'r2' } };
    expect(st.issueTokenProblem(s, renamed, T0)?.message).toMatch(/grant's runner/);
    const week = 7 * 86_400;
    expect(st.issueTokenProblem(s, issue(s, t, at(week)), T0)).toBeNull();
    expect(st.issueTokenProblem(s, issue(s, t, at(week + 3600)), T0)?.message).toMatch(/at most 7 days/);
  });

  it('makes tokens rfr_<id>_<seed> whose public key is what travels', () => {
    const t = createRegistrationToken();
    expect(t.token).toMatch(/^rfr_[a-f0-9]{12}_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(t.publicKey, 'base64')).toHaveLength(32);
    expect(t.token).not.toContain(t.publicKey);
  });

  it("takes a registration only with the token key's fresh proof over this runner and identity", () => {
    const { state, token } = withToken();
    expect(st.registerProblem(state, req(token), null, T0)).toBeNull();
    const stranger = createRegistrationToken().token.replace(/^rfr_[a-f0-9]+_/, `rfr_${state.record.token!.id}_`);
    expect(st.registerProblem(state, req(stranger), null, T0)?.message).toBe(
      'token rejected: the proof is not signed by the token',
    );
    expect(st.registerProblem(state, req(token, {}, 'r2'), null, T0)?.message).toMatch(/another runner or identity/);
    const swapped = { ...req(token), publicKey: Buffer.alloc(44, 9).toString('base64') };
    expect(st.registerProblem(state, swapped, null, T0)?.message).toMatch(/another runner or identity/);
    expect(st.registerProblem(state, req(token), null, T0 + 10 * 60_000)?.message).toMatch(/more than 5 minutes/);
    const { proof: _p, proofSignature: _ps, ...withoutProof } = req(token);
    expect(st.registerProblem(state, { ...withoutProof, token }, tokenHash(token), T0)?.message).toBe(
      'token rejected: unknown token',
    );
  });

  it('still registers a sha256 token issued before grants (old histories replay)', () => {
    const s = fresh();
    const t = createRegistrationToken();
    st.issueToken(s, { tokenId: t.id, tokenHash: tokenHash(t.token), expiresAt: at(100), by: 'ann' }, at(1));
    const old = {
      token: t.token,
      runnerId: RUNNER_ID,
      publicKey: PUBLIC_KEY,
      version: '1',
      drivers: ['process' as const],
      hostname: 'h',
    };
    expect(st.registerProblem(s, old, tokenHash(t.token), T0)).toBeNull();
    expect(st.registerProblem(s, old, tokenHash('rfr_0_other'), T0)?.message).toBe('token rejected: unknown token');
    st.register(s, old, at(2));
    expect(s.admission).toBeNull();
    expect(s.record.identity?.signingKey).toBeUndefined();
  });

  it('refuses expired, revoked and used tokens, and bad identities', () => {
    const { state, token } = withToken();
    const hash = null;
    expect(st.registerProblem(state, req(token), hash, T0 + 3600_000)).toEqual({
      code: 'TokenRejected',
      message: `token rejected: expired at ${at(3600)}`,
    });
    expect(st.registerProblem(state, req(token, { runnerId: 'nope' }), hash, T0)?.code).toBe('InvalidArgument');
    expect(st.registerProblem(state, req(token, { publicKey: '!!' }), hash, T0)?.message).toMatch(/publicKey/);
    expect(st.registerProblem(state, req(token, { drivers: ['k8s' as never] }), hash, T0)?.message).toMatch(/drivers/);
    st.spendToken(state);
    expect(st.registerProblem(state, req(token), hash, T0)?.message).toBe('token rejected: already used');
    st.spendToken(state, false);
    expect(st.revokeTokenProblem(state)).toBeNull();
    st.revokeToken(state, { by: 'ann', reason: 'leaked' }, at(3));
    expect(st.registerProblem(state, req(token), hash, T0)?.message).toBe('token rejected: revoked');
    expect(st.revokeTokenProblem(state)?.code).toBe('InvalidState');
    expect(st.revokeTokenProblem(fresh())?.message).toBe('runner r1 has no token');
  });

  it('registers: token spent, identity kept, ready (or disabled), a first session generation', () => {
    const s = registered();
    expect(s.record).toMatchObject({ status: 'ready', lastSeenAt: at(2), bootId: null });
    expect(s.record.token?.used).toBe(true);
    expect(s.record.identity).toMatchObject({
      runnerId: RUNNER_ID,
      publicKey: PUBLIC_KEY,
      signingKey: SIGNING.publicKey,
      hostname: 'box',
      registeredAt: at(2),
    });
    // What the control worker checks on every connect: the grant and the proof, together.
    expect(s.admission?.grant.tokenKey).toBe(s.record.token?.key);
    expect(s.admission?.proof).toMatchObject({ runner: 'r1', runnerId: RUNNER_ID, signingKey: SIGNING.publicKey });
    expect(s.generation).toBe(1);
    expect(st.sessionRequest(s)).toEqual({ generation: 1, enabled: true, settings: s.record.settings });
    expect(st.scheduleToStartMs(s)).toBe(20_000);

    const d = withToken();
    st.setEnabled(d.state, false, { by: 'ann' }, at(1));
    st.register(d.state, req(d.token), at(2));
    expect(d.state.record.status).toBe('disabled');
  });

  it('connects a registered runner with its identity; a new boot id is a restart and a new session', () => {
    const s = registered();
    const conn = {
      runnerId: RUNNER_ID,
      version: '1.1',
      drivers: ['process', 'docker'] as const,
      hostname: 'box',
      bootId: 'b1',
    };
    expect(st.connectProblem(fresh(), { ...conn, drivers: ['process'] })?.code).toBe('TokenRejected');
    expect(
      st.connectProblem(s, { ...conn, drivers: ['process'], runnerId: '00000000-0000-4000-8000-000000000000' })
        ?.message,
    ).toMatch(/another identity/);
    expect(st.connectProblem(s, { ...conn, drivers: [...conn.drivers] })).toBeNull();
    expect(st.connect(s, { ...conn, drivers: [...conn.drivers] }, at(5))).toBe(true);
    expect(s.generation).toBe(2);
    expect(s.record.identity?.version).toBe('1.1');
    expect(st.connect(s, { ...conn, drivers: [...conn.drivers] }, at(6))).toBe(false);
    expect(s.generation).toBe(2);
  });

  it('goes idle, then lost, and back to ready when a session is taken', () => {
    const s = registered();
    st.sessionSilent(s, at(30), 'no session heartbeat for 20s');
    expect(s.record).toMatchObject({ status: 'idle', reason: 'no session heartbeat for 20s' });
    expect(st.scheduleToStartMs(s)).toBe(40_000);
    expect(st.sessionNotTaken(s, at(70), 'no session taken for 40s')).toBe(false);
    expect(s.record.status).toBe('lost');
    expect(st.scheduleToStartMs(s)).toBeNull();
    // An old generation's signal changes nothing.
    expect(st.sessionOnline(s, { runnerId: RUNNER_ID, bootId: 'b', generation: 0 }, at(80))).toBe(false);
    expect(st.sessionOnline(s, { runnerId: 'someone-else', bootId: 'b', generation: s.generation }, at(80))).toBe(
      false,
    );
    expect(st.sessionOnline(s, { runnerId: RUNNER_ID, bootId: 'b2', generation: s.generation }, at(80))).toBe(true);
    expect(s.record).toMatchObject({ status: 'ready', reason: null, lastSeenAt: at(80), bootId: 'b2' });
    expect(s.record.history.map((h) => h.status)).toEqual([
      'registered',
      'registered',
      'ready',
      'idle',
      'lost',
      'ready',
    ]);
  });

  it('asks for an automatic purge when a temporary runner is lost', () => {
    const s = registered({ temporary: true });
    st.sessionSilent(s, at(30), 'x');
    expect(st.sessionNotTaken(s, at(70), 'y')).toBe(true);
  });

  it('enables and disables with a new generation; the same state twice changes nothing', () => {
    const s = registered();
    expect(st.setEnabled(s, false, { by: 'ann', reason: 'maintenance' }, at(3))).toBe(true);
    expect(s.record).toMatchObject({ enabled: false, status: 'disabled', reason: 'disabled: maintenance' });
    expect(s.generation).toBe(2);
    expect(st.sessionRequest(s).enabled).toBe(false);
    expect(st.setEnabled(s, false, { by: 'ann' }, at(4))).toBe(false);
    expect(s.generation).toBe(2);
    st.setEnabled(s, true, { by: 'bob' }, at(5));
    expect(s.record).toMatchObject({ enabled: true, status: 'ready' });
    expect(s.record.history.at(-1)?.by).toBe('bob');
    // Not registered: enabled changes, no session to renew.
    const f = fresh();
    st.setEnabled(f, false, { by: 'ann' }, at(1));
    expect(f.generation).toBe(0);
    expect(f.record.status).toBe('registered');
  });

  it('configures settings with a new generation, refusing bad keys', () => {
    const s = registered();
    expect(st.configureProblem(s, { by: 'ann', slots: 0 })?.message).toMatch(/setting slots/);
    expect(st.configureProblem(s, { by: 'ann', nope: 1 } as never)?.message).toMatch(/setting nope/);
    st.configure(s, { by: 'ann', slots: 8 }, at(3));
    expect(s.record.settings.slots).toBe(8);
    expect(s.generation).toBe(2);
    expect(s.record.history.at(-1)?.reason).toBe('settings: slots=8');
    st.configure(s, { by: 'ann', slots: 8 }, at(4));
    expect(s.generation).toBe(2);
  });

  it('keeps lost tasks once per run and task, and forgets found ones', () => {
    const s = registered();
    st.taskLost(s, { runWorkflowId: 'run/a/1', task: 'build', attempt: 1 });
    st.taskLost(s, { runWorkflowId: 'run/a/1', task: 'build', attempt: 2 });
    st.taskLost(s, { runWorkflowId: 'run/a/2', task: 'test', attempt: 1 });
    st.taskLost(s, { nope: true } as never);
    expect(s.record.lostTasks).toEqual([
      { runWorkflowId: 'run/a/1', task: 'build', attempt: 2 },
      { runWorkflowId: 'run/a/2', task: 'test', attempt: 1 },
    ]);
    st.taskFound(s, { runWorkflowId: 'run/a/1', task: 'build', attempt: 2 });
    expect(s.record.lostTasks).toHaveLength(1);
  });

  it('purges: lost tasks to tell, a connected runner to wipe, everything refused after', () => {
    const s = registered();
    st.taskLost(s, { runWorkflowId: 'run/a/1', task: 'build', attempt: 1 });
    const done = st.purge(s, { by: 'ann', reason: 'gone' }, at(9));
    expect(done).toEqual({ notify: [{ runWorkflowId: 'run/a/1', task: 'build', attempt: 1 }], wipe: true });
    expect(s.record).toMatchObject({ status: 'deleted', enabled: false, reason: 'gone' });
    expect(s.tokenHash).toBeNull();
    expect(s.grant).toBeNull();
    expect(st.sessionRequest(s, { by: 'ann', reason: 'gone' })).toMatchObject({
      enabled: false,
      delete: { by: 'ann', reason: 'gone' },
    });
    expect(st.adminProblem(s)).toEqual({ code: 'NotFound', message: 'runner r1 was deleted' });
    expect(
      st.connectProblem(s, { runnerId: RUNNER_ID, version: '', drivers: ['process'], hostname: '', bootId: 'b' })
        ?.message,
    ).toBe('runner r1 was deleted');
    expect(st.registerProblem(s, req(createRegistrationToken().token), null, T0)?.code).toBe('NotFound');
    expect(st.sessionOnline(s, { runnerId: RUNNER_ID, bootId: 'b', generation: s.generation }, at(10))).toBe(false);

    const lost = registered();
    st.sessionSilent(lost, at(30), 'x');
    expect(st.purge(lost, { by: 'ann' }, at(31)).wipe).toBe(false);
    expect(lost.record.reason).toBe('purged');
  });

  it('pings only registered runners', () => {
    expect(st.pingProblem(fresh())?.code).toBe('InvalidState');
    expect(st.pingProblem(registered())).toBeNull();
    const s = registered();
    st.sessionSilent(s, at(30), 'x');
    st.seen(s, at(31));
    expect(s.record).toMatchObject({ status: 'ready', lastSeenAt: at(31) });
  });

  it('bounds its history and survives continue-as-new as plain JSON', () => {
    const s = registered();
    for (let i = 0; i < 200; i++) st.setEnabled(s, i % 2 === 0 ? false : true, { by: 'x' }, at(10 + i));
    expect(s.record.history.length).toBe(st.MAX_HISTORY);
    const copy = st.resumedState(JSON.parse(JSON.stringify(s)));
    expect(copy).toEqual(s);
    expect(st.resumedState({ nope: 1 })).toBeNull();
  });

  it('checks names and labels as the CLI flags take them', () => {
    expect(st.nameProblem('build-1')).toBeNull();
    expect(st.nameProblem('-x')).toMatch(/runner name/);
    expect(st.labelProblem('arch', 'x86_64')).toBeNull();
    expect(st.labelProblem('arch', 'a b')).toMatch(/label value/);
  });

  it('takes an operator command signature once, and only within the clock-skew window', () => {
    const s = registered();
    const sig = {
      at: new Date(T0).toISOString(),
      nonce: 'ab'.repeat(8),
      signature: Buffer.alloc(64, 1).toString('base64'),
    };
    expect(st.operatorProblem(s, undefined, T0)?.code).toBe('Unauthorized');
    expect(st.operatorProblem(s, sig, T0)).toBeNull();
    expect(st.operatorProblem(s, sig, T0 + 6 * 60_000)?.message).toMatch(/more than 5 minutes from now/);
    st.spendNonce(s, sig, T0);
    expect(st.operatorProblem(s, sig, T0)?.message).toMatch(/used already/);
    // Forgotten once no signature of its time can be accepted any more.
    st.spendNonce(s, { ...sig, nonce: 'cd'.repeat(8), at: at(1200) }, T0 + 1_200_000);
    expect(s.nonces?.map((n) => n.nonce)).toEqual(['cd'.repeat(8)]);
    // The signature is not part of the settings patch.
    expect(st.configureProblem(s, { slots: 2, by: 'ann', operator: sig })).toBeNull();
  });
});
