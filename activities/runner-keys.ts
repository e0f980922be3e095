/**
 * The runners' signing keys, served by the control worker (trusted) to the run workflows. A run
 * verifies with them what runners tell it (`src/security/runner-proof.ts`). The registry
 * workflow's state is not trusted (anyone with namespace access can start `runner/<name>` with any
 * state): a key counts only when its admission verifies here, as for key delivery: the operator
 * signed the grant for this runner, and the grant's token signed the proof naming the key.
 */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { asFailure } from '../src/failures';
import { runnerWorkflowId } from '../src/ids';
import { admissionQuery, recordQuery } from '../workflows/runner-messages';
import { verifyAdmission } from './registry';
import type { RunnerKeyActivities } from './types';

export interface RunnerKeyActivityDeps {
  /**
   * Runs refuse what runners say without a proof their registered signing key verifies. Off
   * only where runners have no registry record (in-process test runners): then nothing is checked.
   */
  requireProofs: boolean;
  /** base64 of the operator's Ed25519 public key: without it no runner's key is vouched for. */
  operatorPublicKey: string | null;
}

/** The signing key an admission vouches for, or null when it does not verify. */
function verifiedSigningKey(
  operatorPublicKey: string | null,
  name: string,
  admission: Parameters<typeof verifyAdmission>[1] & object,
): string | null {
  try {
    verifyAdmission(operatorPublicKey, admission, admission.proof.publicKey, runnerWorkflowId(name));
    return admission.proof.signingKey;
  } catch {
    return null;
  }
}

/** Runners asked about in one call at most (a run asks for the few it meets). */
const MAX_RUNNERS = 100;
/**
 * A key read from the registry answers again for this long: a thousand small runs on one runner
 * ask for its key a thousand times, two registry queries each. A key a runner lost (purged,
 * registered again) is believed this long at most; a run that refused a message with it reads
 * the registry afresh (`fresh`).
 */
const KEY_CACHE_MS = 5_000;
/** Keys kept in memory at most (the oldest goes first). */
const MAX_CACHED_KEYS = 10_000;

export function createRunnerKeyActivities(deps: RunnerKeyActivityDeps): RunnerKeyActivities {
  const cache = new Map<string, { key: string | null; at: number }>();
  return {
    async runnerSigningKeys({ runners, fresh }) {
      if (!deps.requireProofs) return { required: false, keys: {} };
      const names = [...new Set(Array.isArray(runners) ? runners : [])].slice(0, MAX_RUNNERS);
      const client = Context.current().client;
      const keys: Record<string, string | null> = {};
      try {
        await Promise.all(
          names.map(async (name) => {
            const cached = cache.get(name);
            if (fresh !== true && cached && Date.now() - cached.at < KEY_CACHE_MS) {
              keys[name] = cached.key;
              return;
            }
            try {
              const handle = client.workflow.getHandle(runnerWorkflowId(name));
              const record = await handle.query(recordQuery);
              const admission = record.status === 'deleted' ? null : await handle.query(admissionQuery);
              keys[name] = admission ? verifiedSigningKey(deps.operatorPublicKey, name, admission) : null;
            } catch (err) {
              // No registry record: nobody vouches for this runner.
              if (err instanceof WorkflowNotFoundError) keys[name] = null;
              else throw err;
            }
            cache.delete(name);
            cache.set(name, { key: keys[name] ?? null, at: Date.now() });
            if (cache.size > MAX_CACHED_KEYS) cache.delete(cache.keys().next().value as string);
          }),
        );
      } catch (err) {
        throw asFailure(err);
      }
      return { required: true, keys };
    },
  };
}
