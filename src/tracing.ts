/**
 * OpenTelemetry traces of a Runfleet process, exported over OTLP/HTTP when `tracing.endpoint` is
 * set (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`):
 * a client's start of a run, and under it each activity of the run (a reservation, a task's
 * execution on its runner), joined through Temporal's headers by the client and activity
 * interceptors of `@temporalio/interceptors-opentelemetry`; the run workflow carries the context
 * from its start to its activities (workflows/trace-context.ts). Off (nothing loaded, no span
 * made) when no endpoint is configured.
 */
import type { ClientInterceptors } from '@temporalio/client';
import type { WorkerInterceptors } from '@temporalio/worker';
import type { Config } from './config';

export interface Tracing {
  /** Where spans go. */
  endpoint: string;
  serviceName: string;
  /** For a Client: its start, signal, query and update calls make spans and carry the context. */
  clientInterceptors: ClientInterceptors;
  /** For a Worker running activities: each execution a span, child of its workflow's. */
  activityInterceptors: NonNullable<WorkerInterceptors['activity']>;
  /** Sends what is buffered and stops (on a process's way out). */
  shutdown(): Promise<void>;
}

let installed: Tracing | null = null;

/**
 * Starts tracing for this process once (later calls return the first), or null when no endpoint
 * is configured. `role` names the process (`service.name` is `runfleet-<role>` unless configured).
 */
export function startTracing(config: Pick<Config, 'tracing'>, role: string): Tracing | null {
  if (installed !== null) return installed;
  const endpoint = config.tracing.endpoint;
  if (endpoint === undefined) return null;
  // Loaded only here: a process without tracing pays nothing for these modules.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { AsyncLocalStorageContextManager } =
    require('@opentelemetry/context-async-hooks') as typeof import('@opentelemetry/context-async-hooks');
  const { OTLPTraceExporter } =
    require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
  const { Resource } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  const { BasicTracerProvider, BatchSpanProcessor } =
    require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const otel =
    require('@temporalio/interceptors-opentelemetry') as typeof import('@temporalio/interceptors-opentelemetry');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const serviceName = config.tracing.serviceName ?? `runfleet-${role}`;
  const resource = new Resource({ 'service.name': serviceName });
  const processor = new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }), { scheduledDelayMillis: 1000 });
  const provider = new BasicTracerProvider({ resource, spanProcessors: [processor] });
  // The global tracer, W3C trace-context propagation, and a context that follows async calls.
  provider.register({ contextManager: new AsyncLocalStorageContextManager().enable() });
  installed = {
    endpoint,
    serviceName,
    clientInterceptors: { workflow: [new otel.OpenTelemetryWorkflowClientInterceptor()] },
    activityInterceptors: [
      (ctx) => ({
        inbound: new otel.OpenTelemetryActivityInboundInterceptor(ctx),
        outbound: new otel.OpenTelemetryActivityOutboundInterceptor(ctx),
      }),
    ],
    shutdown: () => provider.shutdown(),
  };
  return installed;
}
