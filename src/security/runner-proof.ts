/**
 * What a runner tells a run, as a signed statement: every reservation answer, execution result,
 * lookup answer and task report carries `proof`, an Ed25519 signature by the runner's identity
 * signing key (its public half is in the runner's registry record, `identity.signingKey`) over
 * the canonical bytes of a `runfleet/runner-says` statement. The statement binds the run's
 * workflow id, the task and attempt, the runner's name and the content, so a proof is good for
 * nothing but the one message it came with. Pure and sandbox-safe: the run workflow verifies with
 * @noble/curves (`ed25519-verify.ts`); runners sign with node:crypto (`src/security/runner-signer.ts`), same bytes.
 *
 * Glossary
 * - Runner statement (`runfleet/runner-says`): one message of one runner to one run, `about`
 *   a reservation, an execution, a lookup or a report.
 * - Proof: base64 of the 64-byte Ed25519 signature over `runnerStatementBytes(statement)`.
 * - Refusal: a message whose proof is missing or does not verify with the runner's registered
 *   key. The run does not apply it and says so: `refused: <what> for runner X not signed by X`.
 * - Checked before: an execution result or reservation answer also says what its proof covers
 *   besides its own fields and which key made it (`said`). The worker's proof codec
 *   (src/codec/proof-check.ts) verifies it there with node:crypto, before the answer enters the
 *   workflow sandbox, and marks it (`proofChecked`). The run then only compares `said` with the
 *   execution or reservation it expects and `said.signer` with the runner's registered key: the
 *   Ed25519 arithmetic in plain JavaScript (0.45 ms) was a third of a big run's workflow CPU;
 *   node:crypto takes 0.15 ms, on the worker's main thread. An answer without the mark, or whose
 *   `said` differs, is verified here as before: the answer is the same either way.
 */
import { proofChecked } from '../codec/payload-converter';
import { runnerTaskQueue } from '../ids';
import type { TaskOutcome } from '../types';
import { verifyEd25519 } from './ed25519-verify';
import { canonicalJson, fromBase64 } from './statements';

export const RUNNER_STATEMENT_KIND = 'runfleet/runner-says';

/** The four messages a runner sends a run. `run` is the run's workflow id. */
export type RunnerMessage =
  | {
      about: 'reservation';
      run: string;
      runner: string;
      /** The run's own id for this reservation: an old answer cannot stand for a new one. */
      nonce: string;
      taskQueue: string;
      leases: string[];
    }
  | {
      about: 'execution';
      run: string;
      task: string;
      attempt: number;
      runner: string;
      lease: string;
      outcome: TaskOutcome;
    }
  | {
      about: 'lookup';
      run: string;
      task: string;
      attempt: number;
      runner: string;
      known: boolean;
      outcome: TaskOutcome | null;
    }
  | { about: 'report'; run: string; task: string; attempt: number; runner: string; outcome: TaskOutcome; note: string };

export type RunnerMessageKind = RunnerMessage['about'];

export type ExecutionMessage = Extract<RunnerMessage, { about: 'execution' }>;
export type ReservationMessage = Extract<RunnerMessage, { about: 'reservation' }>;
/** The messages whose answers say what their proof covers (`said`): the two on a task's hot path. */
export type SaidMessage = ExecutionMessage | ReservationMessage;

/**
 * What a runner's execution result or reservation answer says besides its own fields: the rest
 * of the statement its proof signs, and the runner's signing key (base64, as in its registry
 * record) that made it. The worker's proof codec verifies the proof from these before the run
 * sees the answer (src/codec/proof-check.ts).
 */
export type ExecutionSaid = Omit<ExecutionMessage, 'outcome'> & { signer: string };
export type ReservationSaid = Pick<ReservationMessage, 'about' | 'run' | 'nonce'> & { signer: string };

const isString = (v: unknown): v is string => typeof v === 'string';

/**
 * The message an execution result or reservation answer states (its `said` and its own fields),
 * its proof and signer; null when it states none or is malformed. What the proof codec verifies.
 */
export function statedMessageOf(answer: unknown): { message: SaidMessage; proof: string; signer: string } | null {
  if (typeof answer !== 'object' || answer === null) return null;
  const a = answer as Record<string, unknown>;
  const said = a.said as Partial<ExecutionSaid> | Partial<ReservationSaid> | undefined;
  if (typeof said !== 'object' || said === null || !isString(a.proof) || !isString(said.signer)) return null;
  if (!isString(said.run)) return null;
  const stated = (message: SaidMessage) => ({ message, proof: a.proof as string, signer: said.signer as string });
  if (said.about === 'execution') {
    const { task, attempt, runner, lease } = said;
    if (!isString(task) || typeof attempt !== 'number' || !isString(runner) || !isString(lease)) return null;
    const outcome = a as unknown as TaskOutcome;
    return stated({ about: 'execution', run: said.run, task, attempt, runner, lease, outcome });
  }
  if (said.about === 'reservation') {
    const { runner, taskQueue, leases } = a;
    if (!isString(said.nonce) || !isString(runner) || !isString(taskQueue)) return null;
    if (!Array.isArray(leases) || !leases.every(isString)) return null;
    return stated({ about: 'reservation', run: said.run, runner, nonce: said.nonce, taskQueue, leases });
  }
  return null;
}

/**
 * The key the worker's proof codec verified this answer's proof with, when the answer carries the
 * codec's mark (`proofChecked`) and the message it verified is `expected` (the same `said`: run,
 * and task, attempt, runner and lease, or nonce; the rest is the answer's own fields); otherwise
 * null.
 */
export function checkedSigner(expected: SaidMessage, answer: { said?: unknown }): string | null {
  if (!proofChecked(answer) || typeof answer.said !== 'object' || answer.said === null) return null;
  const said = answer.said as Record<string, unknown>;
  if (said.about !== expected.about || said.run !== expected.run) return null;
  const same =
    expected.about === 'execution'
      ? said.task === expected.task &&
        said.attempt === expected.attempt &&
        said.runner === expected.runner &&
        said.lease === expected.lease
      : said.nonce === expected.nonce;
  return same && isString(said.signer) ? said.signer : null;
}

/**
 * Why a reservation answer whose proof holds must still be refused, or null: a runner may grant
 * leases only on its own queue, only when asked by name (a pinned run, a fleet task's claimed
 * instance, a `runs_on` match) or through a pool the operator admitted it to. Without this a
 * registered runner of another pool could answer a pool's reservations without reading them (a
 * run's nonces are not secret) and be sent that pool's tasks, sealed for itself.
 */
export function reservationScopeProblem(answer: {
  runner: string;
  taskQueue: string;
  /** The runner the reservation was asked of, by name; undefined when asked of a pool. */
  askedRunner: string | undefined;
  pool: string;
  /** The pool the operator admitted the runner to (its key's answer); undefined when unknown. */
  runnerPool: string | undefined;
}): string | null {
  const { runner, taskQueue, askedRunner, pool, runnerPool } = answer;
  const own = runnerTaskQueue(runner);
  if (taskQueue !== own)
    return `refused: reservation answer from runner "${runner}" grants leases on "${taskQueue}", not on its own queue "${own}"`;
  if (askedRunner !== undefined) {
    return runner === askedRunner
      ? null
      : `refused: reservation answer from runner "${runner}", asked of runner "${askedRunner}"`;
  }
  if (runnerPool === pool) return null;
  return runnerPool === undefined
    ? `refused: reservation answer of pool "${pool}" from runner "${runner}", whose pool nobody vouches for`
    : `refused: reservation answer of pool "${pool}" from runner "${runner}", which the operator admitted to pool "${runnerPool}"`;
}

/** The statement a message is signed as: its fields only (an outcome's own, whatever else it carries). */
export function runnerStatement(m: RunnerMessage): Record<string, unknown> {
  const base: Record<string, unknown> = { kind: RUNNER_STATEMENT_KIND, ...m };
  if ('outcome' in m) base.outcome = m.outcome === null ? null : outcomeFields(m.outcome);
  if (m.about === 'reservation') base.leases = [...m.leases];
  return base;
}

/** UTF-8 of the statement's canonical JSON (sorted keys): what is signed and verified. */
export function runnerStatementBytes(m: RunnerMessage): Uint8Array {
  return new TextEncoder().encode(canonicalJson(runnerStatement(m)));
}

/**
 * Why a message's proof is refused, or null when the runner's key verifies it. `checkedBy`: the
 * key the worker's proof codec already verified this very message's proof with (`checkedSigner`),
 * if any; when it is the runner's key the proof is not verified again.
 */
export function runnerProofProblem(
  signingKey: string | null | undefined,
  message: RunnerMessage,
  proof: unknown,
  checkedBy: string | null = null,
): string | null {
  const what = `${WHAT[message.about]} for runner "${message.runner}"`;
  if (!signingKey) return `refused: ${what} not signed by "${message.runner}" (no signing key in its registry record)`;
  if (typeof proof !== 'string' || proof.length === 0)
    return `refused: ${what} not signed by "${message.runner}" (no proof)`;
  if (checkedBy === signingKey) return null;
  if (!verifyRunnerProof(signingKey, message, proof))
    return `refused: ${what} not signed by "${message.runner}" (the proof does not match its signing key)`;
  return null;
}

/** Ed25519 verification in plain JavaScript; false for anything malformed. */
export function verifyRunnerProof(signingKey: string, message: RunnerMessage, proof: string): boolean {
  try {
    const key = fromBase64(signingKey);
    const sig = fromBase64(proof);
    if (key?.length !== 32 || sig?.length !== 64) return false;
    return verifyEd25519(sig, runnerStatementBytes(message), key);
  } catch {
    return false;
  }
}

const WHAT: Record<RunnerMessageKind, string> = {
  reservation: 'reservation answer',
  execution: 'execution result',
  lookup: 'lookup answer',
  report: 'report',
};

function outcomeFields(o: TaskOutcome): TaskOutcome {
  return {
    exitCode: o.exitCode,
    failedStep: o.failedStep,
    startedAt: o.startedAt,
    finishedAt: o.finishedAt,
    // Signed when there are any (an outcome without them is signed as before they existed).
    ...(o.outputs !== undefined ? { outputs: o.outputs } : {}),
  };
}
