/**
 * Task logs read from the object store, on the control workers (they hold its credentials,
 * clients do not): `fetchTaskLogWorkflow` reads here when the task's runner is gone or silent,
 * and for tasks that have ended.
 */
import type { ObjectStore } from '../src/store/object-store';
import { readStoredLog } from '../src/store/task-logs';
import { artifactTask, artifactsPrefix } from '../src/runner/transfers';
import type { ArtifactLinksAnswer, ReadStoredLogRequest, StoredLogAnswer, TaskLogStoreActivities } from './types';

export function createTaskLogStoreActivities(deps: { store: ObjectStore | null }): TaskLogStoreActivities {
  return {
    async readStoredLog(req: ReadStoredLogRequest): Promise<StoredLogAnswer> {
      if (!deps.store) return { configured: false };
      const chunk = await readStoredLog(deps.store, req);
      return { configured: true, ...chunk, source: 'store' };
    },
    async artifactLinks(req): Promise<ArtifactLinksAnswer> {
      const store = deps.store;
      if (!store) return { configured: false };
      const found = (await store.list(artifactsPrefix(req.runId)))
        .map((o) => ({ key: o.key, task: artifactTask(req.runId, o.key), bytes: o.size }))
        .filter((o): o is { key: string; task: string; bytes: number } => o.task !== null)
        .filter((o) => req.task === undefined || o.task === req.task);
      return {
        configured: true,
        artifacts: await Promise.all(
          found.map(async (o) => ({ task: o.task, bytes: o.bytes, url: await store.link(o.key, req.seconds) })),
        ),
      };
    },
  };
}
