/**
 * Task logs read from the object store, on the control workers (they hold its credentials,
 * clients do not): `fetchTaskLogWorkflow` reads here when the task's runner is gone or silent,
 * and for tasks that have ended.
 */
import type { ObjectStore } from '../src/store/object-store';
import { readStoredLog } from '../src/store/task-logs';
import type { ReadStoredLogRequest, StoredLogAnswer, TaskLogStoreActivities } from './types';

export function createTaskLogStoreActivities(deps: { store: ObjectStore | null }): TaskLogStoreActivities {
  return {
    async readStoredLog(req: ReadStoredLogRequest): Promise<StoredLogAnswer> {
      if (!deps.store) return { configured: false };
      const chunk = await readStoredLog(deps.store, req);
      return { configured: true, ...chunk, source: 'store' };
    },
  };
}
