/**
 * The Temporal worker runtime of a foreground process: one per process, installed before the
 * first connection, logging through Output, and without its own signal handlers (Lifecycle
 * stops things in order instead of the runtime shutting every worker down at once).
 */
import type { DataConverter, LogLevel } from '@temporalio/common';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { unreachable } from '../client/errors';
import { createDataConverter, loadKeyRing, noKeysWarning, type KeyRing } from '../codec';
import type { Config } from '../config';
import { RunfleetError } from '../errors';
import { histogramBuckets } from '../metrics';
import { describeConnection, type TemporalConnectionOptions } from '../connection';
import { createS3Store, type ObjectStore } from '../store/object-store';
import { storeSettings } from '../store/settings';
import type { Output } from './output';

/**
 * Installs the runtime; with `metrics.port` set it serves Prometheus's `/metrics` there: the SDK's
 * own metrics (`temporal_*`: workflow and activity task latencies, pollers, slots, sticky cache)
 * and Runfleet's (`runfleet_*`, src/metrics.ts), counters with `_total`, durations in seconds with
 * each histogram's own buckets.
 */
export function installRuntime(out: Output, level: LogLevel, metrics?: Config['metrics'], log?: Config['log']): void {
  Runtime.install({
    logger: out.logger(log?.level ? (log.level.toUpperCase() as LogLevel) : level),
    shutdownSignals: [],
    ...(metrics?.port === undefined
      ? {}
      : {
          telemetryOptions: {
            metrics: {
              prometheus: {
                bindAddress: `${metrics.host}:${metrics.port}`,
                countersTotalSuffix: true,
                unitSuffix: true,
                useSecondsForDurations: true,
                histogramBucketOverrides: histogramBuckets(),
              },
            },
          },
        }),
  });
  if (metrics?.port !== undefined) out.error(`metrics: http://${metrics.host}:${metrics.port}/metrics (Prometheus)`);
}

/**
 * A worker connection; `ServerUnreachable` when the server does not answer. Takes
 * `connectionOptions(config, ctx.env)` (TLS, API key); a bare address connects in plain TCP.
 */
export async function connectWorker(target: string | TemporalConnectionOptions): Promise<NativeConnection> {
  const { namespace: _namespace, ...options } =
    typeof target === 'string' ? { address: target, namespace: '' } : target;
  try {
    return await NativeConnection.connect(options);
  } catch (err) {
    throw unreachable(describeConnection({ ...options, namespace: '' }), err);
  }
}

/**
 * The data keys and data converter of a process that starts workers. Without keys it refuses
 * (`InvalidConfig`) unless `encryption.allowPlaintext` says payloads may travel in clear, and
 * then warns in one line.
 */
export function workerDataConverter(config: Config, out: Output): { keys: KeyRing; dataConverter: DataConverter } {
  const keys = loadKeyRing(config);
  if (!keys.current()) {
    if (!config.encryption.allowPlaintext)
      throw new RunfleetError(
        'InvalidConfig',
        `no data keys at ${config.encryption.keyFile}: run \`runfleet keys create\` (or set RUNFLEET_ALLOW_PLAINTEXT=1 for a development setup whose payloads may travel in clear)`,
      );
    out.log(`warning: ${noKeysWarning(config)}`);
  }
  return { keys, dataConverter: createDataConverter({ keys }) };
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

export function describeTemporal(config: Config, connection?: TemporalConnectionOptions): string {
  const where = connection ? describeConnection(connection) : config.temporal.address;
  return `${where}, namespace ${config.temporal.namespace}`;
}

/**
 * The object store of `store.*` (task logs beyond their runner), or null when none is configured;
 * says where it is on the process's log.
 */
export function objectStore(
  config: Config,
  env: Readonly<Record<string, string | undefined>>,
  out: Output,
): ObjectStore | null {
  const settings = storeSettings(config.store, env);
  if (!settings) return null;
  const store = createS3Store(settings);
  out.log(`task logs: ${store.where}${settings.endpoint ? ` at ${settings.endpoint}` : ''}`);
  return store;
}
