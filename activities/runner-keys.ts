/**
 * The runners' signing keys, served by the control worker (trusted) to the run workflows. A run
 * verifies with them what runners tell it (`src/security/runner-proof.ts`). The registry
 * workflow's state is not trusted (anyone with namespace access can start `runner/<name>` with any
 * state): a key counts only when its admission verifies here, as for key delivery: the operator
 * signed the grant for this runner, and the grant's token signed the proof naming the key.
 */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { asFailure } from '../src/errors';
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

export function createRunnerKeyActivities(deps: RunnerKeyActivityDeps): RunnerKeyActivities {
  return {
    async runnerSigningKeys({ runners }) {
      if (!deps.requireProofs) return { required: false, keys: {} };
      const names = [...new Set(Array.isArray(runners) ? runners : [])].slice(0, MAX_RUNNERS);
      const client = Context.current().client;
      const keys: Record<string, string | null> = {};
      try {
        await Promise.all(
          names.map(async (name) => {
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
          }),
        );
      } catch (err) {
        throw asFailure(err);
      }
      return { required: true, keys };
    },
  };
}
