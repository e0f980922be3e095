/**
 * Every activity a workflow sends to a pool's or a runner's task queue has its arguments marked
 * with that queue's data-key scope (`pool/<name>`, `runner/<name>`), so the encryption codec
 * encrypts them with that pool's or runner's key: a runner host reads only what is sent to its
 * own pool and runner, even when it polls another's queue. Registered as a workflow interceptor
 * module by every worker and bundle (`WORKFLOW_INTERCEPTOR_MODULES` in src/codec).
 */
import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { scopedValue } from '../src/codec/payload-converter';
import { keyScopeOfTaskQueue } from '../src/ids';

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      // Not async: one promise less per activity (a run schedules one per task).
      scheduleActivity(input, next) {
        const scope = input.options.taskQueue ? keyScopeOfTaskQueue(input.options.taskQueue) : null;
        if (scope === null) return next(input);
        return next({ ...input, args: input.args.map((arg) => scopedValue(scope, arg)) });
      },
    },
  ],
});
