/**
 * What a direct start of a workflow may not carry (`temporal workflow start`, open to anyone with
 * namespace access): checked where it enters, failing the workflow at once with the field named.
 *
 * - The state a workflow carries across continue-as-new (the run's and the runner registry's
 *   `resume`, the fleet's and the changegroup's `state`) is written by the workflow itself, never
 *   by a start: one that carries it would forge what the workflow holds (a runner record in
 *   another pool with a copy of the runner's real admission, a fleet's instance records, which it
 *   would then terminate, a changegroup's admitted runs).
 * - A numeric option out of its range: a changegroup that continues as new at every event, or
 *   probes its runs in a hot loop; an EC2 call with no time to finish.
 */
import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';

/** Why a start may not carry `field`, or null: it may when the workflow continued as new. */
export function carriedStateProblem(field: string, value: unknown, owner: string): string | null {
  if (value === undefined || value === null || workflowInfo().continuedFromExecutionRunId) return null;
  return `invalid ${field}: it is set by the ${owner} itself when it continues as new, never by a start`;
}

/** Why an optional whole-number option is out of [min, max], or null when absent or in range. */
export function wholeNumberProblem(field: string, value: unknown, min: number, max: number): string | null {
  if (value === undefined) return null;
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return null;
  return `invalid ${field}: ${JSON.stringify(value) ?? String(value)} is not a whole number from ${min} to ${max}`;
}

/** Fails the workflow at once, not retried: its argument is not one it takes (`InvalidWorkflowInput`). */
export function invalidStart(problem: string): never {
  throw ApplicationFailure.create({ type: 'InvalidWorkflowInput', message: problem, nonRetryable: true });
}

/** `invalidStart` with the first problem there is, if any. */
export function refuseStart(...problems: (string | null)[]): void {
  const problem = problems.find((p) => p !== null);
  if (problem) invalidStart(problem);
}
