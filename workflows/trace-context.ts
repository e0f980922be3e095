/**
 * Carries a run's trace context from its start to its activities, so a task's span on its runner
 * (src/tracing.ts) joins the trace of the client that started the run. Registered as a workflow
 * interceptor module by every worker and bundle (`WORKFLOW_INTERCEPTOR_MODULES` in src/codec).
 *
 * Only the header is copied: no span is made here, and nothing is awaited. The OpenTelemetry
 * package's own workflow interceptors wrap each handler in `async` spans, and those extra yields
 * reorder commands: a history recorded without them (an approval's update, then an activity) fails
 * replay with them ("Activity machine does not handle this event: WorkflowExecutionUpdateCompleted"),
 * so turning tracing on would break the runs in flight. A header copy changes no command's order.
 */
import type { Payload } from '@temporalio/common';
import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';

/** The header the OpenTelemetry interceptors read and write (their `TRACE_HEADER`). */
export const TRACE_HEADER = '_tracer-data';

export const interceptors: WorkflowInterceptorsFactory = () => {
  // One factory call per workflow execution: the start's trace context, if the client sent one.
  let context: Payload | undefined;
  const withContext = <T extends { headers: Record<string, Payload> }>(input: T): T =>
    context === undefined || input.headers[TRACE_HEADER] !== undefined
      ? input
      : { ...input, headers: { ...input.headers, [TRACE_HEADER]: context } };
  return {
    inbound: [
      {
        execute(input, next) {
          context = input.headers[TRACE_HEADER];
          return next(input);
        },
      },
    ],
    outbound: [
      {
        scheduleActivity: (input, next) => next(withContext(input)),
        scheduleLocalActivity: (input, next) => next(withContext(input)),
        continueAsNew: (input, next) => next(withContext(input)),
      },
    ],
  };
};
