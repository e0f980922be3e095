/**
 * Watchers ride out a Temporal service that stops answering for a while (a restarted frontend,
 * a killed history or matching service, a control worker being replaced): `rideOut` asks again
 * with capped backoff on a transient error, says once per new reason what it waits for, and
 * gives up only on a real error (no such run, a bad argument, a refused credential) or when its
 * signal aborts. One-shot commands do not use it: they fail at once and say why.
 */
import { backoff } from '../backoff';
import { formatDuration } from '../duration';
import { RunfleetError } from '../errors';

/**
 * gRPC codes a recovering service answers with: CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
 * ABORTED, INTERNAL, UNAVAILABLE. CANCELLED: a frontend whose call to a killed matching service
 * broke resets the stream ("Call cancelled"); a watcher's own stop ends its wait through `signal`.
 */
const TRANSIENT_GRPC_CODES = new Set([1, 4, 8, 10, 13, 14]);

/** Whether asking again later may succeed: the service or a worker did not answer, nothing was refused. */
export function isTransient(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof RunfleetError) {
      if (e.code === 'ServerUnreachable' || e.code === 'NoAnswer') return true;
      // A coded error is the answer: a NotFound is not transient however it was caused.
      return false;
    }
    if (isGrpcError(e) && TRANSIENT_GRPC_CODES.has(e.code)) return true;
    // The native (Rust) connection's transport failures.
    if (e instanceof Error && e.name === 'TransportError') return true;
  }
  return false;
}

export interface RideOptions {
  /** Ends the waiting: the call's last error is thrown. */
  signal?: AbortSignal;
  /** Told what the watcher waits for (once per new reason) and when the service answers again. */
  onWait?: (message: string) => void;
  /** First wait. Default 500 ms. */
  initialMs?: number;
  /** Longest wait. Default 10 s. */
  maxMs?: number;
}

export async function rideOut<T>(what: string, call: () => Promise<T>, opts: RideOptions = {}): Promise<T> {
  const maxMs = opts.maxMs ?? 10_000;
  let since: number | null = null;
  let lastReason: string | null = null;
  let lastError: unknown = new RunfleetError('InvalidState', `stopped waiting for ${what}`);
  for await (const { delayMs } of backoff({ initialMs: opts.initialMs ?? 500, maxMs, signal: opts.signal })) {
    try {
      const value = await call();
      if (since !== null) opts.onWait?.(`${what} answered again after ${formatDuration(Date.now() - since)}`);
      return value;
    } catch (err) {
      if (!isTransient(err)) throw err;
      lastError = err;
      since ??= Date.now();
      const reason = firstLine(err);
      if (reason !== lastReason) {
        lastReason = reason;
        opts.onWait?.(
          `waiting for ${what}: ${reason} (asking again in ${formatDuration(delayMs)}, then up to every ${formatDuration(maxMs)})`,
        );
      }
    }
  }
  throw lastError;
}

/** The gRPC status in an error's cause chain, as ` (gRPC <code>: <details>)`, or '' when none. */
export function grpcStatus(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    if (isGrpcError(e)) return ` (gRPC ${e.code}: ${e.details})`;
  }
  return '';
}

/**
 * A gRPC status error, recognised by its shape as `isGrpcServiceError` in @temporalio/client does
 * (not imported: the CLI loads this module for every command, the Temporal client only on use).
 */
function isGrpcError(e: unknown): e is Error & { code: number; details: string } {
  const x = e as { code?: unknown; details?: unknown; metadata?: unknown };
  return (
    e instanceof Error &&
    typeof x.code === 'number' &&
    typeof x.details === 'string' &&
    typeof x.metadata === 'object' &&
    x.metadata !== null
  );
}

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split('\n')[0] ?? '';
}
