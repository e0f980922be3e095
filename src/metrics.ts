/**
 * Runfleet's own metrics, in one home: each one's name, kind, unit and meaning. Workflows record
 * them through `metricMeter` (@temporalio/workflow; nothing is recorded while replaying), worker
 * processes through the runtime's meter; the Temporal runtime exports them with the SDK's own
 * (`temporal_*`) on the process's Prometheus endpoint (`--metrics-port`, see docs/operating.md).
 * Sandbox-safe: constants only.
 */

export interface MetricDefinition {
  name: string;
  kind: 'counter' | 'histogram' | 'gauge';
  /** The unit the exporter appends to a histogram's name (`_seconds`), or '' for plain counts. */
  unit: string;
  description: string;
  /** A histogram's bucket boundaries, in its unit. */
  buckets?: readonly number[];
}

export const METRICS = {
  runsFinished: {
    name: 'runfleet_runs_finished',
    kind: 'counter',
    unit: '',
    description: 'Runs that ended, by result (success, failed, stopped)',
  },
  runDuration: {
    name: 'runfleet_run_duration',
    kind: 'histogram',
    unit: 'seconds',
    description: 'From a run start to its end, by result',
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600],
  },
  taskDispatchLatency: {
    name: 'runfleet_task_dispatch_latency',
    kind: 'histogram',
    unit: 'seconds',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
    description: 'From a task ready (its dependencies settled) to a runner of its pool reserving it, by pool',
  },
  tasksFinished: {
    name: 'runfleet_tasks_finished',
    kind: 'counter',
    unit: '',
    description:
      'Tasks of ended runs by their final status (success, failed, skipped, cancelled), counted when the run ends',
  },
  tasksLost: {
    name: 'runfleet_tasks_lost',
    kind: 'counter',
    unit: '',
    description: 'Task attempts whose runner stopped heartbeating (not retried unless idempotent)',
  },
  tasksFound: {
    name: 'runfleet_tasks_found',
    kind: 'counter',
    unit: '',
    description: 'Lost task attempts settled by their runner (its report, or its answer to the run)',
  },
  messagesRefused: {
    name: 'runfleet_runner_messages_refused',
    kind: 'counter',
    unit: '',
    description: "Runner messages a run refused: a signature the runner's registered key does not verify",
  },
  registrationsRefused: {
    name: 'runfleet_registrations_refused',
    kind: 'counter',
    unit: '',
    description: 'Runner registrations and reconnections the registry refused, by reason (its error code)',
  },
  runnerTransitions: {
    name: 'runfleet_runner_transitions',
    kind: 'counter',
    unit: '',
    description: 'Runner status changes in the registry, by the status entered (ready, idle, lost, disabled, deleted)',
  },
  runnerSlots: {
    name: 'runfleet_runner_slots',
    kind: 'gauge',
    unit: '',
    description: "A runner process's task slots, by state (free, busy)",
  },
  fleetInstances: {
    name: 'runfleet_fleet_instances',
    kind: 'gauge',
    unit: '',
    description: 'Instances of an EC2 fleet, by fleet and state (including the termination phases)',
  },
} as const satisfies Record<string, MetricDefinition>;

/** The histograms' bucket boundaries, as the Prometheus exporter takes them. */
export function histogramBuckets(): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const m of Object.values(METRICS) as MetricDefinition[]) if (m.buckets) out[m.name] = [...m.buckets];
  return out;
}
