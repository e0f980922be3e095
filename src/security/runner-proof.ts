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
 */
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

/** Why a message's proof is refused, or null when the runner's key verifies it. */
export function runnerProofProblem(
  signingKey: string | null | undefined,
  message: RunnerMessage,
  proof: unknown,
): string | null {
  const what = `${WHAT[message.about]} for runner "${message.runner}"`;
  if (!signingKey) return `refused: ${what} not signed by "${message.runner}" (no signing key in its registry record)`;
  if (typeof proof !== 'string' || proof.length === 0)
    return `refused: ${what} not signed by "${message.runner}" (no proof)`;
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
