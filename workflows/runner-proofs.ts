/**
 * The run's check of what runners tell it (`src/security/runner-proof.ts`): each runner's signing
 * key comes from its registry record through the control worker (`runnerSigningKeys`, which
 * answers from its few-seconds cache or reads the registry), once per runner per run (in memory: a run that continues as new or is evicted asks again), and every
 * reservation answer, execution result, lookup answer and report is verified with it. A control
 * worker without enforcement answers `required: false`, and nothing is checked.
 *
 * A run first asks, when it starts, for the keys its control worker already knows (`prefetch`:
 * the run's pools' runners it read from the registry seconds ago): a local
 * activity that reads memory only, recorded as one marker in the start's workflow task. The usual
 * first answer then needs no lookup of its own: a one-task run takes three workflow tasks, not
 * four. A runner the prefetch did not answer for is looked up as before.
 */
import { ActivityFailure, CancellationScope, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { RunnerKeyActivities, RunnerSigningKeys } from '../activities/types';
import { runnerProofProblem, type RunnerMessage } from '../src/security/runner-proof';
import type { RunPatches } from './run/patches';

/**
 * After a refusal a runner's key is read again, at most this often: a runner registered again
 * has a new key, and a forger must not make the run read the registry on every message.
 */
const REFETCH_AFTER_MS = 60_000;

export interface RunnerProofs {
  /**
   * Why the message is refused (`refused: ... not signed by ...`), or null when it stands.
   * `checkedBy`: the key the worker's proof codec verified this message's proof with
   * (`checkedSigner`), if any: when it is the runner's key the proof is not verified again.
   */
  check(message: RunnerMessage, proof: unknown, checkedBy?: string | null): Promise<string | null>;
  /**
   * `check`'s answer at once when it needs no read of the registry (the runner's key is known
   * here, the usual case): no promise, no await on a task's hot path. Undefined: use `check`.
   */
  checkKnown(message: RunnerMessage, proof: unknown, checkedBy?: string | null): string | null | undefined;
  /**
   * Asks the control worker, once, for the keys it knows of these pools' and runners' (no read of
   * the registry). `check` waits for it before it looks a runner up. Failing is harmless: every
   * runner is then looked up as before.
   */
  prefetch(req: { pools: string[]; runners: string[] }): Promise<void>;
  /**
   * The pool the operator admitted the runner to, as its key's answer said; undefined when the
   * answer did not say (recorded before pools were), or its key is not known here.
   */
  poolOf(runner: string): string | undefined;
  /**
   * `poolOf`, reading the runner's key again when the answer known here did not say its pool (a
   * run that looked it up before pools were answered, and replayed since).
   */
  vouchedPool(runner: string): Promise<string | undefined>;
  /** True once the control worker said runners' messages are checked (`required`). */
  enforced(): boolean;
}

export function createRunnerProofs(patches: RunPatches): RunnerProofs {
  // Not a local activity: one was tried, and a run replayed after a failed workflow task (too
  // many events buffered during it) resolved it at another point than it had, and scheduled its
  // executions in another order: a nondeterminism error, and the run stalled.
  const registry = proxyActivities<RunnerKeyActivities>({
    // A few registry queries on the control worker.
    startToCloseTimeout: '30s',
    retry: { initialInterval: 1_000, maximumAttempts: 5 },
  });
  // A local activity here is safe where the lookup's was not (above): it is asked in the run's
  // first workflow task, before any activity of the run exists (no completion can be buffered
  // meanwhile), and it answers from memory at once, well inside that task, so its marker is
  // always recorded there. Not retried: a failure only means the runners are looked up.
  const memory = proxyLocalActivities<Pick<RunnerKeyActivities, 'knownRunnerKeys'>>({
    // Queueing included: far inside the workflow task's 10 s, even on a worker under load.
    scheduleToCloseTimeout: '2s',
    startToCloseTimeout: '2s',
    retry: { maximumAttempts: 1 },
  });
  let prefetching: Promise<void> | null = null;
  let required: boolean | null = null;
  /** The control worker said proofs are not required (read through a call: it changes across awaits). */
  const off = () => required === false;
  const keys: Record<string, { key: string | null; pool?: string; at: number }> = {};
  const reading: Record<string, Promise<string | null>> = {};

  /** What the control worker answered of one runner: its key, and the pool it was admitted to if said. */
  function learn(answer: RunnerSigningKeys, runner: string): { key: string | null; pool?: string; at: number } {
    const pool = answer.pools?.[runner];
    return { key: answer.keys[runner] ?? null, ...(pool !== undefined ? { pool } : {}), at: Date.now() };
  }

  /**
   * Reads one runner's key (callers for the same runner share the read); null with the reason
   * when it cannot. The read is nobody's alone, so no caller's cancellation cancels it: a caller
   * given up stops waiting for it (`waitFor`), and the others still get their answer.
   */
  function read(runner: string, fresh: boolean): Promise<string | null> {
    const ask = () => registry.runnerSigningKeys({ runners: [runner], ...(fresh ? { fresh } : {}) });
    reading[runner] ??= (patches.has('sharedKeyRead') ? CancellationScope.nonCancellable(ask) : ask())
      .then((answer: RunnerSigningKeys) => {
        required = answer.required;
        keys[runner] = learn(answer, runner);
        return null;
      })
      .catch((err: unknown) => {
        const why = err instanceof ActivityFailure && err.cause ? err.cause.message : String(err);
        return `its signing key could not be read from the registry: ${why}`;
      })
      .finally(() => delete reading[runner]);
    return reading[runner];
  }

  /** The read, until this caller's scope is cancelled: then it throws the cancellation. */
  function waitFor(reads: Promise<string | null>): Promise<string | null> {
    if (!patches.has('sharedKeyRead')) return reads;
    return Promise.race([reads, CancellationScope.current().cancelRequested.then(() => null)]);
  }

  /** The answer from the key known here, or undefined when the key must be read (first, or again). */
  function known(message: RunnerMessage, proof: unknown, checkedBy: string | null = null): string | null | undefined {
    if (off()) return null;
    const cached = keys[message.runner];
    if (cached === undefined) return undefined;
    const problem = runnerProofProblem(cached.key, message, proof, checkedBy);
    if (problem === null || Date.now() - cached.at < REFETCH_AFTER_MS) return problem;
    return undefined;
  }

  return {
    checkKnown: known,
    prefetch(req) {
      prefetching ??= memory
        .knownRunnerKeys(req)
        .then((answer: RunnerSigningKeys) => {
          required ??= answer.required;
          for (const [runner, key] of Object.entries(answer.keys)) {
            if (typeof key === 'string') keys[runner] ??= learn(answer, runner);
          }
        })
        .catch(() => undefined);
      return prefetching;
    },
    poolOf: (runner) => keys[runner]?.pool,
    enforced: () => required === true,
    async vouchedPool(runner) {
      if (keys[runner]?.pool === undefined && !off()) await waitFor(read(runner, false));
      return keys[runner]?.pool;
    },
    async check(message, proof, checkedBy = null) {
      const runner = message.runner;
      if (prefetching && keys[runner] === undefined) await prefetching;
      if (!off() && keys[runner] === undefined) {
        const failed = await waitFor(read(runner, false));
        if (failed) return `refused: ${message.about} from runner "${runner}" not checked (${failed})`;
      }
      const answer = known(message, proof, checkedBy);
      if (answer !== undefined) return answer;
      // Refused with a key read over a minute ago: the runner may have registered again since.
      const problem = runnerProofProblem(keys[runner]?.key, message, proof, checkedBy);
      if (await waitFor(read(runner, true))) return problem;
      return runnerProofProblem(keys[runner]?.key, message, proof, checkedBy);
    },
  };
}
