/** How the run reads the failures its activities raise, and the failures it raises itself. */
import { ActivityFailure, ApplicationFailure, CancelledFailure, TimeoutFailure } from '@temporalio/workflow';
import type { RunnerPurgedRequest } from '../run-messages';

/** 'SCHEDULE_TO_START' | 'START_TO_CLOSE' | 'HEARTBEAT' | 'SCHEDULE_TO_CLOSE', or null. */
export function timeoutType(err: unknown): string | null {
  if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure) return err.cause.timeoutType ?? null;
  return null;
}

export function isApplicationFailure(err: unknown, type: string): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === type;
}

export function describeError(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  if (err instanceof CancelledFailure) return 'cancelled';
  return err instanceof Error ? err.message : String(err);
}

export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 120 ? text.slice(0, 117) + '...' : text;
}

export function invalidState(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'InvalidState', message, nonRetryable: true });
}

export function notFound(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'NotFound', message, nonRetryable: true });
}

export function purgedReason(p: RunnerPurgedRequest): string {
  return `runner "${p.runner}" was purged by ${p.by}: ${p.reason}`;
}
