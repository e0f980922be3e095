/**
 * Lists a run's stored artifacts for a client, with links that download them straight from the
 * object store for a while: the control workers hold the store's credentials, clients do not, and
 * archives of hundreds of MB do not fit in a workflow's payloads.
 */
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { ArtifactLink, TaskLogStoreActivities } from '../activities/types';
import { invalidStart } from './start-checks';

export interface RunArtifactsInput {
  runId: string;
  /** One task's artifacts; default every task's. */
  task?: string;
}

/** How long a link downloads: long enough for a large archive, short enough to leak little. */
export const ARTIFACT_LINK_SECONDS = 900;

const store = proxyActivities<TaskLogStoreActivities>({
  startToCloseTimeout: 20_000,
  retry: { maximumAttempts: 2 },
});

export async function runArtifactsWorkflow(input: RunArtifactsInput): Promise<ArtifactLink[]> {
  if (!input || typeof input.runId !== 'string' || (input.task !== undefined && typeof input.task !== 'string')) {
    invalidStart('runArtifactsWorkflow takes {"runId", "task"?}');
  }
  const answer = await store.artifactLinks({
    runId: input.runId,
    ...(input.task !== undefined ? { task: input.task } : {}),
    seconds: ARTIFACT_LINK_SECONDS,
  });
  if (!answer.configured) {
    throw ApplicationFailure.create({
      type: 'ComponentUnavailable',
      message: 'the control workers have no object store (store.bucket): no artifacts are kept',
      nonRetryable: true,
    });
  }
  return answer.artifacts;
}
