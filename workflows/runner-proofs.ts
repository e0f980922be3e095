/**
 * The run's check of what runners tell it (`src/security/runner-proof.ts`): each runner's signing
 * key comes from its registry record through the control worker (`runnerSigningKeys`, a local
 * activity: the control worker running the run reads it, or answers from its few-seconds cache),
 * once per runner per run (in memory: a run that continues as new or is evicted asks again), and every
 * reservation answer, execution result, lookup answer and report is verified with it. A control
 * worker without enforcement answers `required: false`, and nothing is checked.
 */
import { ActivityFailure, patched, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { RunnerKeyActivities, RunnerSigningKeys } from '../activities/types';
import { runnerProofProblem, type RunnerMessage } from '../src/security/runner-proof';

/**
 * After a refusal a runner's key is read again, at most this often: a runner registered again
 * has a new key, and a forger must not make the run read the registry on every message.
 */
const REFETCH_AFTER_MS = 60_000;
/**
 * Patch of runs started from this version on, one marker for two changes that cut a run's events
 * (each patch costs a run a marker and a change-version upsert of its own):
 * - runner keys are read with a local activity on the control worker that runs the run (no
 *   activity task through the server, no workflow task of its own), from its few-seconds cache;
 * - the run's memo and search attributes are upserted only where they differ from what its start
 *   set (`workflows/run.ts`): a run submitted by the client upserts once, when it ends.
 */
export const FEWER_EVENTS_PATCH = 'fewer-events-per-run';

export interface RunnerProofs {
  /** Why the message is refused (`refused: ... not signed by ...`), or null when it stands. */
  check(message: RunnerMessage, proof: unknown): Promise<string | null>;
  /**
   * `check`'s answer at once when it needs no read of the registry (the runner's key is known
   * here, the usual case): no promise, no await on a task's hot path. Undefined: use `check`.
   */
  checkKnown(message: RunnerMessage, proof: unknown): string | null | undefined;
}

export function createRunnerProofs(): RunnerProofs {
  const options = {
    // A few registry queries on the control worker.
    startToCloseTimeout: '30s',
    retry: { initialInterval: 1_000, maximumAttempts: 5 },
  } as const;
  const registry = proxyActivities<RunnerKeyActivities>(options);
  const local = proxyLocalActivities<RunnerKeyActivities>(options);
  let required: boolean | null = null;
  /** The control worker said proofs are not required (read through a call: it changes across awaits). */
  const off = () => required === false;
  const keys: Record<string, { key: string | null; at: number }> = {};
  const reading: Record<string, Promise<string | null>> = {};

  /** Reads one runner's key (callers for the same runner share the read); null with the reason when it cannot. */
  function read(runner: string, fresh: boolean): Promise<string | null> {
    reading[runner] ??= (patched(FEWER_EVENTS_PATCH) ? local : registry)
      .runnerSigningKeys({ runners: [runner], ...(fresh ? { fresh } : {}) })
      .then((answer: RunnerSigningKeys) => {
        required = answer.required;
        keys[runner] = { key: answer.keys[runner] ?? null, at: Date.now() };
        return null;
      })
      .catch((err: unknown) => {
        const why = err instanceof ActivityFailure && err.cause ? err.cause.message : String(err);
        return `its signing key could not be read from the registry: ${why}`;
      })
      .finally(() => delete reading[runner]);
    return reading[runner];
  }

  /** The answer from the key known here, or undefined when the key must be read (first, or again). */
  function known(message: RunnerMessage, proof: unknown): string | null | undefined {
    if (off()) return null;
    const cached = keys[message.runner];
    if (cached === undefined) return undefined;
    const problem = runnerProofProblem(cached.key, message, proof);
    if (problem === null || Date.now() - cached.at < REFETCH_AFTER_MS) return problem;
    return undefined;
  }

  return {
    checkKnown: known,
    async check(message, proof) {
      if (off()) return null;
      const runner = message.runner;
      if (keys[runner] === undefined) {
        const failed = await read(runner, false);
        if (failed) return `refused: ${message.about} from runner "${runner}" not checked (${failed})`;
        if (off()) return null;
      }
      const cached = keys[runner] as { key: string | null; at: number };
      const problem = runnerProofProblem(cached.key, message, proof);
      if (problem === null || Date.now() - cached.at < REFETCH_AFTER_MS) return problem;
      if (await read(runner, true)) return problem;
      return runnerProofProblem(keys[runner]?.key, message, proof);
    },
  };
}
