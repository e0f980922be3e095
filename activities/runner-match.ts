/**
 * `runs_on`: the runners of a pool that have a task's labels, read from the registry by the
 * control worker. A runner's pool and labels count as the operator signed them into its grant
 * (verified here, as for its keys), never as its record says: anyone with namespace access can
 * start `runner/<name>` again with any record and a copy of its real admission. A record whose
 * admission does not verify matches nothing while proofs are required. Records are read at most
 * every CACHE_MS per worker: many runs ask at once.
 */
import { Context } from '@temporalio/activity';
import { asFailure } from '../src/failures';
import { WORKFLOW_TYPES } from '../src/ids';
import { matchRunners, type MatchCandidate } from '../src/registry/match';
import { admissionQuery, recordQuery, type Admission, type RunnerRecord } from '../workflows/runner-messages';
import { verifyAdmission } from './registry';
import type { RunnerMatchActivities } from './types';

export interface RunnerMatchDeps {
  /** Labels count only from grants the operator key signed (false: in-process test runners). */
  requireProofs: boolean;
  operatorPublicKey: string | null;
  /** How long one read of the registry serves. Default CACHE_MS. */
  cacheMs?: number;
}

/** A runner that registered or changed is seen by runs within this time. */
const CACHE_MS = 5_000;
/** Runners read in one registry listing at most (a page of visibility). */
const MAX_RUNNERS = 1_000;

/**
 * What `runs_on` takes of one runner's registry record, or null when it matches nothing. While
 * proofs are required its pool and labels are the ones its verified grant says, never the
 * record's; an admission that does not verify throws.
 */
export function matchCandidate(
  deps: Pick<RunnerMatchDeps, 'requireProofs' | 'operatorPublicKey'>,
  workflowId: string,
  record: RunnerRecord,
  admission: Admission | null,
): MatchCandidate | null {
  let { pool, labels } = record;
  if (deps.requireProofs) {
    if (!admission || !record.identity) return null;
    ({ pool, labels } = verifyAdmission(deps.operatorPublicKey, admission, admission.proof.publicKey, workflowId));
  }
  return {
    name: record.name,
    pool,
    labels,
    drivers: record.identity?.drivers ?? [],
    status: record.status,
    enabled: record.enabled,
  };
}

export function createRunnerMatchActivities(deps: RunnerMatchDeps): RunnerMatchActivities {
  let cached: { at: number; taskQueue: string; candidates: Promise<MatchCandidate[]> } | null = null;
  const cacheMs = deps.cacheMs ?? CACHE_MS;

  async function readRegistry(taskQueue: string): Promise<MatchCandidate[]> {
    const client = Context.current().client;
    const page = await client.workflowService.listWorkflowExecutions({
      namespace: client.options.namespace,
      query: `WorkflowType = '${WORKFLOW_TYPES.runner}' AND TaskQueue = '${taskQueue.replace(/'/g, "\\'")}' AND ExecutionStatus = 'Running'`,
      pageSize: MAX_RUNNERS,
    });
    const ids = (page.executions ?? [])
      .map((e) => e.execution?.workflowId ?? '')
      .filter((id) => id.startsWith('runner/'));
    const found = await Promise.all(
      ids.map(async (id): Promise<MatchCandidate | null> => {
        try {
          const handle = client.workflow.getHandle(id);
          const record = await handle.query(recordQuery);
          const admission = deps.requireProofs ? await handle.query(admissionQuery) : null;
          return matchCandidate(deps, id, record, admission);
        } catch {
          // Gone meanwhile, or an admission that does not verify: it matches nothing.
          return null;
        }
      }),
    );
    return found.filter((c): c is MatchCandidate => c !== null);
  }

  return {
    async matchRunners(req) {
      try {
        const taskQueue = Context.current().info.taskQueue;
        const now = Date.now();
        if (!cached || cached.taskQueue !== taskQueue || now - cached.at >= cacheMs) {
          const candidates = readRegistry(taskQueue);
          cached = { at: now, taskQueue, candidates };
          // A failed read is not kept.
          candidates.catch(() => {
            if (cached?.candidates === candidates) cached = null;
          });
        }
        return matchRunners(await cached.candidates, req);
      } catch (err) {
        throw asFailure(err);
      }
    },
  };
}
