/**
 * Where a workflow worker gets its workflow code: a bundle passed in (tests share one), the bundle
 * the build made (`npm run build` writes `dist/workflow-bundle.js` beside the compiled workers: an
 * installed package starts without webpack), or the workflow sources bundled at start (a checkout,
 * so what runs is what is there).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkerOptions } from '@temporalio/worker';
import { WORKFLOW_INTERCEPTOR_MODULES, WORKFLOW_PRELOAD_MODULES } from '../src/codec';

export type WorkflowCode = Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath' | 'interceptors' | 'bundlerOptions'>;

export function workflowCode(bundle?: WorkerOptions['workflowBundle']): WorkflowCode {
  if (bundle) return { workflowBundle: bundle };
  const built = join(__dirname, '..', 'workflow-bundle.js');
  // Only a compiled worker (dist/workers/*.js) has the build's bundle beside it.
  if (__filename.endsWith('.js') && existsSync(built)) return { workflowBundle: { codePath: built } };
  return {
    workflowsPath: require.resolve('../workflows'),
    interceptors: { workflowModules: WORKFLOW_INTERCEPTOR_MODULES },
    bundlerOptions: { preloadModules: WORKFLOW_PRELOAD_MODULES },
  };
}
