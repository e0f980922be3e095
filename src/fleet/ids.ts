/**
 * Names of the fleet's Temporal pieces. Sandbox-safe. (Candidates for src/ids.ts.)
 */

/** The task queue of the fleet worker: the fleet workflows and their EC2 activities. */
export const FLEET_TASK_QUEUE = 'runfleet-fleet';

export const FLEET_WORKFLOW_TYPE = 'fleetWorkflow';

/** `fleet/<name>`: one entity workflow per fleet; the fixed id is what keeps refreshes single. */
export function fleetWorkflowId(name: string): string {
  return `fleet/${name}`;
}
