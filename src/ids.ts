/**
 * Names readable in the Temporal Web UI: workflow ids, task queues, search attributes.
 * Sandbox-safe: workflows import it.
 */

/** The task queue of the control worker (run workflows and other entity workflows). */
export const CONTROL_TASK_QUEUE = 'runfleet-control';

/** Workflow type names, as `temporal workflow start --type` takes them. */
export const WORKFLOW_TYPES = {
  run: 'runWorkflow',
  fetchTaskLog: 'fetchTaskLogWorkflow',
  runArtifacts: 'runArtifactsWorkflow',
  runner: 'runnerWorkflow',
  fleet: 'fleetWorkflow',
} as const;

/** The task queue of the fleet worker: the fleet workflows and their EC2 activities. */
export const FLEET_TASK_QUEUE = 'runfleet-fleet';

/** `fleet/<name>`: one entity workflow per EC2 fleet; the fixed id is what keeps refreshes single. */
export function fleetWorkflowId(name: string): string {
  return `fleet/${name}`;
}

/** The registry runner of a fleet instance is named after the instance: `runner/i-0abc…`. */
export function fleetRunnerName(instanceId: string): string {
  return instanceId;
}

/**
 * Reservations for a pool go through this queue; every runner of the pool that offers the
 * driver serves it (so a runner never answers for a driver it lacks). `process` is the default.
 */
export function poolTaskQueue(pool: string, driver: string = 'process'): string {
  return driver === 'process' ? `pool/${pool}` : `pool/${pool}/${driver}`;
}

/** Task execution and log reads for one runner. */
export function runnerTaskQueue(runner: string): string {
  return `runner/${runner}`;
}

/** `run/<group without its leading slash>/<id>`, e.g. `run/project/42/main/m3k2a9x1`. */
export function runWorkflowId(group: string, id: string): string {
  return `run/${group.replace(/^\/+/, '')}/${id}`;
}

/** `changegroup/<name>`: the entity workflow that holds a changegroup's version and slots. */
export function changegroupWorkflowId(name: string): string {
  return `changegroup/${name}`;
}

export function isRunWorkflowId(value: string): boolean {
  return value.startsWith('run/');
}

/** Every prefix of a group path: `/a/b` gives `/`, `/a`, `/a/b` (for prefix queries). */
export function groupPrefixes(group: string): string[] {
  const parts = group.split('/').filter((p) => p.length > 0);
  const out = ['/'];
  for (let i = 1; i <= parts.length; i++) out.push('/' + parts.slice(0, i).join('/'));
  return out;
}

/** `runner/<name>`: the registry entity workflow of one runner (its task queue has the same name). */
export function runnerWorkflowId(runner: string): string {
  return `runner/${runner}`;
}

/**
 * Reservations of runs pinned to one runner (scheduled runs): served only by that runner,
 * next to its pool's queues.
 */
export function pinnedTaskQueue(runner: string, driver: string = 'process'): string {
  return driver === 'process' ? `runner/${runner}/reserve` : `runner/${runner}/reserve/${driver}`;
}

/** `runner/<runner>/<id>`: a Temporal Schedule that starts runs pinned to a runner. */
export function runnerScheduleId(runner: string, id: string): string {
  return `runner/${runner}/${id}`;
}

/**
 * The data-key scope of a task queue: payloads sent to a pool's queues are encrypted with that
 * pool's key, payloads sent to a runner's queues with that runner's own key, so a runner host
 * reads only what its own pool and runner are sent. Null for the control and fleet queues
 * (the control key). Pool and runner names hold no `/`.
 */
export function keyScopeOfTaskQueue(taskQueue: string): string | null {
  const [kind, name] = taskQueue.split('/');
  if ((kind === 'pool' || kind === 'runner') && name) return `${kind}/${name}`;
  return null;
}

/** The key scopes a runner holds: its pool's and its own. */
export function runnerKeyScopes(runner: string, pool: string): string[] {
  return [`runner/${runner}`, `pool/${pool}`];
}
