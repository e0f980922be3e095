/**
 * The Temporal worker runtime of a foreground process: one per process, installed before the
 * first connection, logging through Output, and without its own signal handlers (Lifecycle
 * stops things in order instead of the runtime shutting every worker down at once).
 */
import type { LogLevel } from '@temporalio/common';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { unreachable } from '../client/errors';
import type { Config } from '../config';
import type { Output } from './output';

export function installRuntime(out: Output, level: LogLevel): void {
  Runtime.install({ logger: out.logger(level), shutdownSignals: [] });
}

/** A worker connection; `ServerUnreachable` when the server does not answer. */
export async function connectWorker(address: string): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({ address });
  } catch (err) {
    throw unreachable(address, err);
  }
}

/** The variables tasks inherit from this process (an allowlist: never the whole environment). */
export function passEnv(
  env: Readonly<Record<string, string | undefined>>,
  names: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = env[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

export function describeTemporal(config: Config): string {
  return `${config.temporal.address}, namespace ${config.temporal.namespace}`;
}
