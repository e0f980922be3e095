/**
 * How a Runfleet error crosses Temporal: as the ApplicationFailure of its code (errors.ts), so a
 * user error is not retried and a caller matches it by type. Apart from the taxonomy so that what
 * only reports errors (the CLI) does not load the SDK.
 */
import { ApplicationFailure } from '@temporalio/common';
import { ERROR_CODES, RunfleetError, type ErrorCode } from './errors';

/** The ApplicationFailure an activity or workflow raises for a coded error. */
export function failure(code: ErrorCode, message: string, details?: unknown): ApplicationFailure {
  const nonRetryable = !ERROR_CODES[code].retryable;
  return ApplicationFailure.create({
    type: code,
    message,
    nonRetryable,
    details: details === undefined ? undefined : [details],
  });
}

/**
 * An error as an activity should throw it: a RunfleetError becomes the ApplicationFailure of
 * its code (so a user error is not retried), anything else stays as it is.
 */
export function asFailure(err: unknown): unknown {
  return err instanceof RunfleetError ? failure(err.code, err.message) : err;
}
