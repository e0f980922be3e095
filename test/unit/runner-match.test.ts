/** `runs_on`: which registered runners may take a task that asks for labels. */
import { describe, expect, it } from 'vitest';
import { matchCandidate } from '../../activities/runner-match';
import { hasLabels, matchRunners, type MatchCandidate } from '../../src/registry/match';
import { initialState } from '../../src/registry/state';
import { createRegistrationToken, registrationProof, tokenGrant } from '../../src/registry/token';
import { generateSigningKey, signStatement } from '../../src/security/operator';

const runner = (name: string, extra: Partial<MatchCandidate> = {}): MatchCandidate => ({
  name,
  pool: 'ci',
  labels: {},
  drivers: ['process'],
  status: 'ready',
  enabled: true,
  ...extra,
});

describe('matchRunners', () => {
  const fleet = [
    runner('b-gpu', { labels: { os: 'linux', gpu: 'true' } }),
    runner('a-gpu', { labels: { os: 'linux', gpu: 'true', zone: 'x' } }),
    runner('cpu', { labels: { os: 'linux' } }),
    runner('off', { labels: { os: 'linux', gpu: 'true' }, enabled: false }),
    runner('away', { labels: { os: 'linux', gpu: 'true' }, status: 'idle' }),
    runner('dock', { labels: { os: 'linux', gpu: 'true' }, drivers: ['docker'] }),
    runner('other-pool', { pool: 'deploy', labels: { os: 'linux', gpu: 'true' } }),
  ];

  it('names the ready, enabled runners of the pool and driver with every label, in name order', () => {
    expect(matchRunners(fleet, { pool: 'ci', driver: 'process', labels: { os: 'linux', gpu: 'true' } })).toEqual({
      runners: ['a-gpu', 'b-gpu'],
      why: null,
    });
    expect(matchRunners(fleet, { pool: 'ci', driver: 'docker', labels: { gpu: 'true' } }).runners).toEqual(['dock']);
  });

  it('says why nobody matches, naming what the pool has', () => {
    const none = matchRunners(fleet, { pool: 'ci', driver: 'process', labels: { gpu: 'false' } });
    expect(none.runners).toEqual([]);
    expect(none.why).toContain('pool "ci" has 6 runners');
    expect(none.why).toContain('away {gpu=true,os=linux} idle');
    expect(none.why).toContain('dock {gpu=true,os=linux} no process driver');
    expect(none.why).toContain('and 1 more');
    const two = matchRunners([fleet[3] as MatchCandidate, fleet[2] as MatchCandidate], {
      pool: 'ci',
      driver: 'process',
      labels: { gpu: 'true' },
    });
    expect(two.why).toBe('pool "ci" has 2 runners: cpu {os=linux} other labels; off {gpu=true,os=linux} disabled');
    expect(matchRunners(fleet, { pool: 'nope', driver: 'process', labels: {} }).why).toBe(
      'pool "nope" has no registered runner',
    );
  });

  it('compares values exactly and ignores inherited keys', () => {
    expect(hasLabels({ gpu: 'true' }, { gpu: 'True' })).toBe(false);
    expect(hasLabels({}, { toString: 'x' })).toBe(false);
    expect(hasLabels({ a: '1', b: '2' }, { a: '1' })).toBe(true);
  });
});

describe('matchCandidate: what runs_on believes of a registry record', () => {
  const operator = generateSigningKey();
  const publicKey = Buffer.alloc(44, 7).toString('base64');
  /** Runner r1's real admission: the operator granted it pool "linux" with label role=build. */
  function admitted() {
    const t = createRegistrationToken();
    const now = Date.now();
    const grant = tokenGrant(
      { name: 'r1', pool: 'linux', labels: { role: 'build' }, temporary: false, slots: 4 },
      t,
      new Date(now).toISOString(),
      new Date(now + 3_600_000).toISOString(),
    );
    const p = registrationProof(t.token, {
      name: 'r1',
      runnerId: 'id-1',
      publicKey,
      signingKey: generateSigningKey().publicKey,
    });
    return {
      grant,
      signature: signStatement(operator.seed, grant),
      proof: p.proof!,
      proofSignature: p.proofSignature!,
    };
  }
  /** Its registry record as someone wrote it: another pool and other labels than granted. */
  const record = {
    ...initialState({ name: 'r1', pool: 'deploy', labels: { role: 'release' } }, new Date().toISOString()).record,
    status: 'ready' as const,
    identity: {
      runnerId: 'id-1',
      publicKey,
      version: '1',
      drivers: ['process' as const],
      hostname: 'h',
      registeredAt: new Date().toISOString(),
    },
  };
  const proofs = { requireProofs: true, operatorPublicKey: operator.publicKey };

  it("takes the pool and labels of the runner's verified grant, never of its record", () => {
    const c = matchCandidate(proofs, 'runner/r1', record, admitted());
    expect(c).toMatchObject({ name: 'r1', pool: 'linux', labels: { role: 'build' } });
    // So a run of the record's pool asking for the record's labels does not get it.
    expect(matchRunners([c!], { pool: 'deploy', driver: 'process', labels: { role: 'release' } }).runners).toEqual([]);
    expect(matchRunners([c!], { pool: 'linux', driver: 'process', labels: { role: 'build' } }).runners).toEqual(['r1']);
  });

  it('matches nothing without an admission or identity, and throws on an admission for another runner or operator', () => {
    expect(matchCandidate(proofs, 'runner/r1', record, null)).toBeNull();
    expect(matchCandidate(proofs, 'runner/r1', { ...record, identity: null }, admitted())).toBeNull();
    expect(() => matchCandidate(proofs, 'runner/r2', record, admitted())).toThrow(/not for runner\/r2/);
    const stranger = { requireProofs: true, operatorPublicKey: generateSigningKey().publicKey };
    expect(() => matchCandidate(stranger, 'runner/r1', record, admitted())).toThrow(/not signed by the operator/);
  });

  it('takes the record as it is where proofs are off (in-process test runners)', () => {
    const c = matchCandidate({ requireProofs: false, operatorPublicKey: null }, 'runner/r1', record, null);
    expect(c).toMatchObject({ pool: 'deploy', labels: { role: 'release' } });
  });
});
