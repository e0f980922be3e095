/**
 * What a workflow carries across continue-as-new (the run's and the runner registry's `resume`,
 * the fleet's and the changegroup's `state`) is written by the workflow itself, never by a start.
 * A direct start that carries one (`temporal workflow start`, open to anyone with namespace
 * access) would forge what the workflow holds: a runner record in another pool with a copy of the
 * runner's real admission, a fleet's instance records (instances it would then terminate), a
 * changegroup's admitted runs. Such a start fails at once, naming the field.
 */
import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';

/** Why a start may not carry `field`, or null: it may when the workflow continued as new. */
export function carriedStateProblem(field: string, value: unknown, owner: string): string | null {
  if (value === undefined || value === null || workflowInfo().continuedFromExecutionRunId) return null;
  return `invalid ${field}: it is set by the ${owner} itself when it continues as new, never by a start`;
}

/** Fails the workflow at once (not retried) when a start carries `field`. */
export function refuseCarriedStateOnStart(field: string, value: unknown, owner: string): void {
  const problem = carriedStateProblem(field, value, owner);
  if (problem) throw ApplicationFailure.create({ type: 'InvalidWorkflowInput', message: problem, nonRetryable: true });
}
