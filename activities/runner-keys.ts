/**
 * The runners' signing keys, served by the control worker (trusted) to the run workflows: each
 * runner's `identity.signingKey` as its registry workflow (`runner/<name>`) records it. A run
 * verifies with them what runners tell it (`src/security/runner-proof.ts`).
 */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { asFailure } from '../src/errors';
import { runnerWorkflowId } from '../src/ids';
import { recordQuery } from '../workflows/runner-messages';
import type { RunnerKeyActivities } from './types';

export interface RunnerKeyActivityDeps {
  /**
   * Runs refuse what runners say without a proof their registered signing key verifies. Off
   * only where runners have no registry record (in-process test runners): then nothing is checked.
   */
  requireProofs: boolean;
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
              const record = await client.workflow.getHandle(runnerWorkflowId(name)).query(recordQuery);
              keys[name] = record.status === 'deleted' ? null : (record.identity?.signingKey ?? null);
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
