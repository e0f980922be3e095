/**
 * The Temporal SDK runtime as every benchmark process installs it (the bench process and the
 * baseline worker processes). Kept apart from bench/topology.ts so a worker process loads only
 * the SDK's worker package.
 */
import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';

/**
 * The SDK's own logger: WARN and above, minus the "No workflows/activities registered, not
 * polling" notice that every activity-only or workflow-only worker here prints at start.
 * The core (Rust) side: ERROR only, forwarded to that logger. Its WARNs are routine under this
 * load (e.g. "Task not found when completing" for an activity whose workflow already moved on).
 * `shutdownSignals`: as the SDK's option (`[]` for a process that stops its workers itself).
 * `metricsAddress`: where the SDK serves its own metrics (Prometheus text), `host:port`.
 */
export function installBenchRuntime(
  options: { shutdownSignals?: NodeJS.Signals[]; metricsAddress?: string } = {},
): void {
  const defaultLog = new DefaultLogger('WARN');
  Runtime.install({
    logger: new DefaultLogger('WARN', (entry) => {
      if (/^No (workflows|activities) registered, not polling/.test(entry.message)) return;
      defaultLog.log(entry.level, entry.message, entry.meta);
    }),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'ERROR', other: 'ERROR' }), forward: {} },
      ...(options.metricsAddress ? { metrics: { prometheus: { bindAddress: options.metricsAddress } } } : {}),
    },
    ...(options.shutdownSignals ? { shutdownSignals: options.shutdownSignals } : {}),
  });
}
