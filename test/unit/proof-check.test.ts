/**
 * The proof codec (src/codec/proof-check.ts) verifies a runner's execution result where the worker
 * decodes it, and the run trusts its mark instead of verifying again. Here the mark is attacked:
 * forged by the sender in clear and inside the ciphertext, earned with another key, carried over
 * to another execution, written as JSON; and a result tampered with after signing. Each is either
 * unmarked or marked for a key the run does not take, so the run verifies as before and refuses.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import {
  KeyRing,
  PROOF_CHECKED_METADATA,
  ProofCheckCodec,
  createDataConverter,
  newDataKey,
  payloadConverter,
  proofChecked,
} from '../../src/codec';
import {
  checkedSigner,
  runnerProofProblem,
  type ExecutionMessage,
  type ExecutionSaid,
  type ReservationMessage,
  type SaidMessage,
} from '../../src/security/runner-proof';
import { createRunnerSigner } from '../../src/security/runner-signer';
import type { ReservationAnswer as Reservation } from '../../activities/types';
import type { TaskOutcome } from '../../src/types';

function signerOf(): ReturnType<typeof createRunnerSigner> {
  const { privateKey } = generateKeyPairSync('ed25519');
  return createRunnerSigner(
    Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url').toString('base64'),
  );
}

const victim = signerOf();
const attacker = signerOf();

const outcome: TaskOutcome = {
  exitCode: 0,
  failedStep: null,
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:01.000Z',
};
const expected: ExecutionMessage = {
  about: 'execution',
  run: 'run/g/r1',
  task: 'build',
  attempt: 1,
  runner: 'victim',
  lease: 'lease-1',
  outcome,
};

type Result = TaskOutcome & { proof?: string; said?: ExecutionSaid };

/** What a runner returns (activities/runner.ts): the outcome, its proof, and what the proof covers. */
function resultBy(signer: ReturnType<typeof createRunnerSigner>, message: ExecutionMessage = expected): Result {
  const { about: _about, outcome: o, ...statement } = message;
  return {
    ...o,
    proof: signer.sign(message),
    said: { about: 'execution', ...statement, signer: signer.publicKey },
  };
}

const reservation: ReservationMessage = {
  about: 'reservation',
  run: 'run/g/r1',
  runner: 'victim',
  nonce: 'run-id/1',
  taskQueue: 'runner/victim',
  leases: ['lease-1', 'lease-2'],
};

/** What a runner's pool worker answers (activities/pool.ts). */
function answerBy(signer: ReturnType<typeof createRunnerSigner>, message = reservation): Reservation {
  const { runner, taskQueue, leases, run, nonce } = message;
  return {
    runner,
    taskQueue,
    leases,
    proof: signer.sign(message),
    said: { about: 'reservation', run, nonce, signer: signer.publicKey },
  };
}

async function encodeWith(codecs: PayloadCodec[], value: unknown): Promise<Payload> {
  let payloads = [payloadConverter.toPayload(value)];
  for (const codec of codecs) payloads = await codec.encode(payloads);
  return payloads[0] as Payload;
}

async function decodeWith<T = Result>(codecs: PayloadCodec[], payload: Payload): Promise<T> {
  let payloads = [payload];
  for (const codec of [...codecs].reverse()) payloads = await codec.decode(payloads);
  return payloadConverter.fromPayload(payloads[0] as Payload);
}

/** The payload's trip from a runner's worker to the control worker, both with `keys`. */
async function trip<T = Result>(value: T, keys = new KeyRing()): Promise<T> {
  const codecs = createDataConverter({ keys }).payloadCodecs ?? [];
  return decodeWith<T>(codecs, await encodeWith(codecs, value));
}

/** The run's answer (workflows/run/leases.ts) for the victim's registered key. */
function verdict(answer: Result | Reservation, message: SaidMessage = expected): string | null {
  const checkedBy = checkedSigner(message, answer);
  return runnerProofProblem(victim.publicKey, message, answer.proof, checkedBy);
}

const NOT_SIGNED = `refused: execution result for runner "victim" not signed by "victim" (the proof does not match its signing key)`;

describe('the proof codec', () => {
  it("marks a runner's signed execution result, in clear and encrypted, and the run takes it", async () => {
    for (const keys of [new KeyRing(), new KeyRing([newDataKey()])]) {
      const got = await trip(resultBy(victim), keys);
      expect(proofChecked(got)).toBe(true);
      expect(checkedSigner(expected, got)).toBe(victim.publicKey);
      expect(verdict(got)).toBeNull();
      // The outcome the run settles is the one that was signed.
      expect({ exitCode: got.exitCode, failedStep: got.failedStep }).toEqual({ exitCode: 0, failedStep: null });
    }
  });

  it("marks a runner's signed reservation answer; not one for another nonce or run, nor one with leases added", async () => {
    const got = await trip(answerBy(victim));
    expect(proofChecked(got)).toBe(true);
    expect(checkedSigner(reservation, got)).toBe(victim.publicKey);
    expect(verdict(got, reservation)).toBeNull();
    // An old answer replayed for a new reservation: the mark does not stand for it.
    expect(checkedSigner({ ...reservation, nonce: 'run-id/2' }, got)).toBeNull();
    expect(checkedSigner({ ...reservation, run: 'run/g/r2' }, got)).toBeNull();
    expect(verdict(got, { ...reservation, nonce: 'run-id/2' })).toBe(
      `refused: reservation answer for runner "victim" not signed by "victim" (the proof does not match its signing key)`,
    );
    // Leases added after signing: unmarked, and refused.
    const grown = await trip({ ...answerBy(victim), leases: ['lease-1', 'lease-2', 'lease-3'] });
    expect(proofChecked(grown)).toBe(false);
    expect(verdict(grown, { ...reservation, leases: grown.leases })).toContain('the proof does not match');
  });

  it('the run trusts the mark for the registered key: it does not verify the proof again', () => {
    // What makes it fast; why the mark must be the codec's word alone (the cases below).
    expect(runnerProofProblem(victim.publicKey, expected, 'not-a-proof', victim.publicKey)).toBeNull();
    expect(runnerProofProblem(victim.publicKey, expected, 'not-a-proof', attacker.publicKey)).toContain('not signed');
  });

  it('does not mark a result whose outcome was changed after signing', async () => {
    const tampered = { ...resultBy(victim), exitCode: 1 };
    const got = await trip(tampered);
    expect(proofChecked(got)).toBe(false);
    expect(verdict(got, { ...expected, outcome: { ...outcome, exitCode: 1 } })).toBe(NOT_SIGNED);
  });

  it("marks a result signed with another key for that key, which the run does not take for the victim's", async () => {
    const forged: Result = { ...resultBy(attacker), said: { ...resultBy(attacker).said!, runner: 'victim' } };
    const got = await trip(forged);
    expect(proofChecked(got)).toBe(true); // the attacker's key verifies the attacker's proof
    expect(checkedSigner(expected, got)).toBe(attacker.publicKey);
    expect(verdict(got)).toBe(NOT_SIGNED);
  });

  it("strips a mark the sender set, in clear or inside the ciphertext (an attacker with the runner's data key)", async () => {
    const stamp: PayloadCodec = {
      encode: async (ps) =>
        ps.map((p) => ({
          ...p,
          metadata: { ...p.metadata, [PROOF_CHECKED_METADATA]: new TextEncoder().encode('ed25519') },
        })),
      decode: async (ps) => ps,
    };
    const forged: Result = { ...outcome, proof: 'AAAA', said: { ...resultBy(victim).said! } };
    const withoutProofCodec = (codecs: PayloadCodec[]) => codecs.filter((c) => !(c instanceof ProofCheckCodec));
    // In clear: a deployment without data keys, stamped after Runfleet's codecs.
    const clear = createDataConverter().payloadCodecs ?? [];
    const outside = await encodeWith([...clear, stamp], forged);
    // Inside: stamped before compression and encryption with the data key.
    const encrypted = createDataConverter({ keys: new KeyRing([newDataKey()]) }).payloadCodecs ?? [];
    const inside = await encodeWith([stamp, ...withoutProofCodec(encrypted)], forged);
    expect(outside.metadata?.[PROOF_CHECKED_METADATA]).toBeDefined();
    for (const [payload, control] of [
      [outside, clear],
      [inside, encrypted],
    ] as const) {
      const got = await decodeWith(control, payload);
      expect(proofChecked(got)).toBe(false);
      expect(verdict(got)).toBe(
        `refused: execution result for runner "victim" not signed by "victim" (the proof does not match its signing key)`,
      );
    }
  });

  it('a mark stands only for the execution it was given for: another task, attempt, run, lease or runner is verified anew', async () => {
    const got = await trip(resultBy(victim));
    for (const other of [
      { ...expected, task: 'deploy' },
      { ...expected, attempt: 2 },
      { ...expected, run: 'run/g/r2' },
      { ...expected, lease: 'lease-2' },
      { ...expected, runner: 'other' },
    ])
      expect(checkedSigner(other, got)).toBeNull();
    expect(verdict(got, { ...expected, attempt: 2 })).toBe(NOT_SIGNED);
  });

  it('cannot be marked through JSON, and leaves results without a statement or over 64 KiB to the run', async () => {
    const json = { ...resultBy(victim), 'runfleet.proofChecked': true, [PROOF_CHECKED_METADATA]: 'ed25519' };
    const unsigned = await trip({ ...outcome, proof: 'AAAA', ...json, said: undefined });
    expect(proofChecked(unsigned)).toBe(false);
    const big = { ...outcome, outputs: { blob: 'x'.repeat(70_000) } };
    const large = await trip(resultBy(victim, { ...expected, outcome: big }));
    expect(proofChecked(large)).toBe(false);
    // Unmarked, the run verifies it itself, and it stands.
    expect(verdict(large, { ...expected, outcome: big })).toBeNull();
  });
});
