/**
 * Turns Temporal client errors into Runfleet's taxonomy, so callers match on `code` only.
 */
import {
  ApplicationFailure,
  NamespaceNotFoundError,
  ServiceError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  isGrpcServiceError,
} from '@temporalio/client';
import { RunfleetError, isErrorCode } from '../errors';

/** gRPC status codes used here (from the gRPC spec; @grpc/grpc-js is not a direct dependency). */
const GRPC_INVALID_ARGUMENT = 3;
const GRPC_UNAVAILABLE = 14;

export interface ErrorContext {
  /** The Temporal address, for `ServerUnreachable`. */
  address: string;
  namespace: string;
  /** The workflow concerned, for `NotFound` / `AlreadyExists`. */
  workflowId?: string;
  /**
   * The namespace answered an earlier call of this client. Temporal then says "namespace not
   * found" when it cannot read its namespaces (PostgreSQL down): no answer, not a wrong namespace.
   */
  namespaceAnswered?: boolean;
}

export function unreachable(address: string, cause: unknown): RunfleetError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new RunfleetError('ServerUnreachable', `cannot reach Temporal at ${address} (TEMPORAL_ADDRESS): ${why}`, {
    cause,
  });
}

/** True for a gRPC UNAVAILABLE (server down, connection refused or reset), here or as a cause. */
export function isUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (isGrpcServiceError(e) && e.code === GRPC_UNAVAILABLE) return true;
    // The worker's native (Rust) connection reports transport failures with this class.
    if (e instanceof Error && e.name === 'TransportError') return true;
  }
  return false;
}

/** A RunfleetError for an error thrown by the Temporal client, or the error itself when unknown. */
export function toRunfleetError(err: unknown, ctx: ErrorContext): unknown {
  if (err instanceof RunfleetError) return err;
  if (isUnavailable(err)) return unreachable(ctx.address, err);
  if (err instanceof WorkflowNotFoundError) {
    const id = err.workflowId || ctx.workflowId;
    return new RunfleetError('NotFound', id ? `no run ${id} in namespace ${ctx.namespace}` : err.message);
  }
  if (err instanceof WorkflowExecutionAlreadyStartedError) {
    return new RunfleetError('AlreadyExists', `a run with id ${err.workflowId} exists already; choose another --id`);
  }
  if (err instanceof NamespaceNotFoundError) {
    if (ctx.namespaceAnswered) {
      return new RunfleetError(
        'NoAnswer',
        `namespace "${err.namespace}" at ${ctx.address} was not found though it answered before: the service cannot read its namespaces now (is its database down?)`,
      );
    }
    return new RunfleetError(
      'InvalidConfig',
      `namespace "${err.namespace}" does not exist at ${ctx.address} (TEMPORAL_NAMESPACE)`,
    );
  }
  if (err instanceof WorkflowUpdateFailedError || err instanceof WorkflowFailedError) {
    const coded = fromApplicationFailure(err.cause);
    if (coded) return coded;
  }
  const coded = fromApplicationFailure(err);
  if (coded) return coded;
  if (err instanceof ServiceError && isGrpcServiceError(err.cause)) {
    const cause = err.cause;
    if (cause.code === GRPC_INVALID_ARGUMENT && /search attribute/i.test(cause.details ?? '')) {
      return new RunfleetError(
        'ComponentUnavailable',
        `namespace ${ctx.namespace} lacks Runfleet's search attributes (start the server with \`runfleet server start-dev\` or register them): ${cause.details}`,
      );
    }
  }
  return err;
}

/**
 * The first ApplicationFailure in a failure's cause chain (a workflow's own failure, or an
 * activity's inside it), as a RunfleetError with its type as the code.
 */
export function fromApplicationFailure(err: unknown): RunfleetError | null {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ApplicationFailure) {
      const code = isErrorCode(e.type) ? e.type : 'Internal';
      return new RunfleetError(code, e.message, e.details?.[0]);
    }
  }
  return null;
}
