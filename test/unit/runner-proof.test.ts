import { generateKeyPairSync, createPublicKey, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  reservationScopeProblem,
  runnerProofProblem,
  runnerStatement,
  runnerStatementBytes,
  verifyRunnerProof,
  type RunnerMessage,
} from '../../src/security/runner-proof';
import { createRunnerSigner } from '../../src/security/runner-signer';

/** A fresh Ed25519 key as Runfleet keeps it: base64 seed (identity.json) and raw public key (registry). */
function keyPair(): { seed: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url').toString('base64');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url').toString('base64');
  return { seed, publicKey: raw };
}

const outcome = {
  exitCode: 0,
  failedStep: null,
  startedAt: '2025-01-01T00:00:00.000Z',
  finishedAt: '2025-01-01T00:00:01.000Z',
};
const report: RunnerMessage = {
  about: 'report',
  run: 'run/g/r1',
  task: 'build',
  attempt: 2,
  runner: 'victim',
  outcome,
  note: 'found after the runner restarted',
};

describe('runner statements', () => {
  it('are canonical: key order and extra outcome fields do not change the bytes', () => {
    const reordered = {
      note: report.note,
      outcome: {
        finishedAt: outcome.finishedAt,
        startedAt: outcome.startedAt,
        failedStep: null,
        exitCode: 0,
        proof: 'x',
      },
      runner: 'victim',
      attempt: 2,
      task: 'build',
      run: 'run/g/r1',
      about: 'report',
    } as RunnerMessage;
    expect(Buffer.from(runnerStatementBytes(reordered)).toString()).toBe(
      Buffer.from(runnerStatementBytes(report)).toString(),
    );
    expect(runnerStatement(report)).toMatchObject({ kind: 'runfleet/runner-says', about: 'report', runner: 'victim' });
  });

  it('signed with node:crypto verify with @noble/curves and with node:crypto', () => {
    const k = keyPair();
    const proof = createRunnerSigner(k.seed).sign(report);
    expect(verifyRunnerProof(k.publicKey, report, proof)).toBe(true);
    expect(runnerProofProblem(k.publicKey, report, proof)).toBeNull();
    const spki = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(k.publicKey, 'base64').toString('base64url') },
      format: 'jwk',
    });
    expect(verify(null, runnerStatementBytes(report), spki, Buffer.from(proof, 'base64'))).toBe(true);
  });

  it('bind every field: a proof for one message is good for no other', () => {
    const k = keyPair();
    const signer = createRunnerSigner(k.seed);
    const proof = signer.sign(report);
    const changes: Partial<Record<string, unknown>>[] = [
      { run: 'run/g/r2' },
      { task: 'test' },
      { attempt: 3 },
      { runner: 'impostor' },
      { outcome: { ...outcome, exitCode: 1 } },
      { outcome: { ...outcome, finishedAt: '2025-01-01T00:00:02.000Z' } },
      { note: 'something else' },
      { about: 'execution', lease: 'l1' },
    ];
    for (const change of changes) {
      expect(
        verifyRunnerProof(k.publicKey, { ...report, ...change } as RunnerMessage, proof),
        JSON.stringify(change),
      ).toBe(false);
    }
    const lookup: RunnerMessage = {
      about: 'lookup',
      run: 'run/g/r1',
      task: 'build',
      attempt: 2,
      runner: 'victim',
      known: false,
      outcome: null,
    };
    const lookupProof = signer.sign(lookup);
    expect(verifyRunnerProof(k.publicKey, lookup, lookupProof)).toBe(true);
    expect(verifyRunnerProof(k.publicKey, { ...lookup, known: true }, lookupProof)).toBe(false);
    const reservation: RunnerMessage = {
      about: 'reservation',
      run: 'run/g/r1',
      runner: 'victim',
      nonce: 'abc/1',
      taskQueue: 'runner/victim',
      leases: ['l1', 'l2'],
    };
    const reservationProof = signer.sign(reservation);
    expect(verifyRunnerProof(k.publicKey, reservation, reservationProof)).toBe(true);
    expect(verifyRunnerProof(k.publicKey, { ...reservation, nonce: 'abc/2' }, reservationProof)).toBe(false);
    expect(verifyRunnerProof(k.publicKey, { ...reservation, taskQueue: 'runner/impostor' }, reservationProof)).toBe(
      false,
    );
    expect(verifyRunnerProof(k.publicKey, { ...reservation, leases: ['l1'] }, reservationProof)).toBe(false);
  });

  it('refuse a missing proof, another key, no registered key and garbage, saying which', () => {
    const k = keyPair();
    const other = keyPair();
    const forged = createRunnerSigner(other.seed).sign(report);
    expect(runnerProofProblem(k.publicKey, report, undefined)).toBe(
      'refused: report for runner "victim" not signed by "victim" (no proof)',
    );
    expect(runnerProofProblem(k.publicKey, report, forged)).toBe(
      'refused: report for runner "victim" not signed by "victim" (the proof does not match its signing key)',
    );
    expect(runnerProofProblem(null, report, forged)).toBe(
      'refused: report for runner "victim" not signed by "victim" (no signing key in its registry record)',
    );
    expect(verifyRunnerProof(k.publicKey, report, 'not base64!')).toBe(false);
    expect(verifyRunnerProof('AAAA', report, forged)).toBe(false);
    expect(() => createRunnerSigner('c2hvcnQ=')).toThrow(/32-byte/);
  });
});

describe('reservationScopeProblem: whose reservation answers a run takes, once their proof holds', () => {
  const base = { runner: 'r1', taskQueue: 'runner/r1', askedRunner: undefined, pool: 'linux', runnerPool: 'linux' };

  it('takes a runner of the pool asked, for leases on its own queue', () => {
    expect(reservationScopeProblem(base)).toBeNull();
  });

  it('refuses a runner the operator admitted to another pool, or to no pool known', () => {
    expect(reservationScopeProblem({ ...base, runnerPool: 'gpu' })).toBe(
      'refused: reservation answer of pool "linux" from runner "r1", which the operator admitted to pool "gpu"',
    );
    expect(reservationScopeProblem({ ...base, runnerPool: undefined })).toBe(
      'refused: reservation answer of pool "linux" from runner "r1", whose pool nobody vouches for',
    );
  });

  it("refuses leases on any queue but the runner's own", () => {
    expect(reservationScopeProblem({ ...base, taskQueue: 'runner/r2' })).toBe(
      'refused: reservation answer from runner "r1" grants leases on "runner/r2", not on its own queue "runner/r1"',
    );
    expect(reservationScopeProblem({ ...base, taskQueue: 'pool/linux' })).not.toBeNull();
  });

  it('asked of a runner by name: takes that runner only, whatever its pool', () => {
    expect(reservationScopeProblem({ ...base, askedRunner: 'r1', runnerPool: undefined })).toBeNull();
    expect(reservationScopeProblem({ ...base, askedRunner: 'r9' })).toBe(
      'refused: reservation answer from runner "r1", asked of runner "r9"',
    );
  });
});
