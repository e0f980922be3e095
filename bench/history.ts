/**
 * Where a workflow's time went, read from its history: events per type, workflow task queue
 * wait and processing time, and per activity type how long activities waited to start.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { percentile } from './stats';

export interface Spread {
  count: number;
  p50: number;
  p95: number;
  /** Sum of the values, ms. */
  total: number;
}

export interface HistoryStats {
  events: number;
  /** Events of each type divided by the number of tasks. */
  eventTypesPerTask: Record<string, number>;
  /** Workflow tasks: scheduled -> started (waiting for the worker), started -> completed (the worker's turn). */
  workflowTasks: {
    queueWaitMs: Spread;
    processingMs: Spread;
    failed: number;
    timedOut: number;
    failureCauses: Record<string, number>;
  };
  /** Per activity type: scheduled -> started (queue wait, incl. waiting for a free slot), started -> completed. */
  activities: Record<string, { scheduleToStartMs: Spread; startToCloseMs: Spread; timedOut: Record<string, number> }>;
}

type Ev = Record<string, unknown> & { eventId?: unknown; eventTime?: unknown };
type Attrs = Record<string, unknown>;

/** The enum values seen in practice, named (others print as numbers). */
const WFT_FAILED_CAUSES: Record<string, string> = {
  '1': 'UNHANDLED_COMMAND',
  '13': 'RESET_STICKY_TASK_QUEUE',
  '17': 'FORCE_CLOSE_COMMAND (too many events buffered during a workflow task)',
  '24': 'NON_DETERMINISTIC_ERROR',
};
const TIMEOUT_TYPES: Record<string, string> = {
  '1': 'START_TO_CLOSE',
  '2': 'SCHEDULE_TO_START',
  '3': 'SCHEDULE_TO_CLOSE',
  '4': 'HEARTBEAT',
};

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(String(v)));

function spread(values: number[]): Spread {
  return {
    count: values.length,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    total: values.reduce((a, b) => a + b, 0),
  };
}

function eventType(e: Ev): [string, Attrs] {
  const key = Object.keys(e).find((k) => k.endsWith('EventAttributes') && e[k] != null);
  return key ? [key.replace(/EventAttributes$/, ''), e[key] as Attrs] : [`type${String(e['eventType'])}`, {}];
}

export async function historyStats(handle: WorkflowHandle, tasks: number): Promise<HistoryStats> {
  const history = await handle.fetchHistory();
  const events = (history.events ?? []) as unknown as Ev[];
  const counts: Record<string, number> = {};
  const time = new Map<number, number>();
  const activityTypeOf = new Map<number, string>();
  const wftQueue: number[] = [];
  const wftProcessing: number[] = [];
  const failureCauses: Record<string, number> = {};
  let failed = 0;
  let timedOut = 0;
  const acts: Record<string, { s2s: number[]; s2c: number[]; timedOut: Record<string, number> }> = {};
  const act = (type: string) => (acts[type] ??= { s2s: [], s2c: [], timedOut: {} });

  for (const e of events) {
    const id = num(e.eventId);
    const at = tsToMs(e.eventTime as Parameters<typeof tsToMs>[0]);
    time.set(id, at);
    const [type, a] = eventType(e);
    counts[type] = (counts[type] ?? 0) + 1;
    switch (type) {
      case 'workflowTaskStarted':
        wftQueue.push(at - (time.get(num(a['scheduledEventId'])) ?? at));
        break;
      case 'workflowTaskCompleted':
        wftProcessing.push(at - (time.get(num(a['startedEventId'])) ?? at));
        break;
      case 'workflowTaskFailed': {
        failed++;
        const failure = a['failure'] as { message?: string } | undefined;
        const code = String(a['cause']);
        const message = failure?.message ? `: ${failure.message.slice(0, 120)}` : '';
        const cause = `${WFT_FAILED_CAUSES[code] ?? code}${message}`;
        failureCauses[cause] = (failureCauses[cause] ?? 0) + 1;
        break;
      }
      case 'workflowTaskTimedOut':
        timedOut++;
        break;
      case 'activityTaskScheduled':
        activityTypeOf.set(id, (a['activityType'] as { name?: string } | undefined)?.name ?? '?');
        break;
      case 'activityTaskStarted': {
        const sched = num(a['scheduledEventId']);
        act(activityTypeOf.get(sched) ?? '?').s2s.push(at - (time.get(sched) ?? at));
        break;
      }
      case 'activityTaskCompleted': {
        const sched = num(a['scheduledEventId']);
        act(activityTypeOf.get(sched) ?? '?').s2c.push(at - (time.get(num(a['startedEventId'])) ?? at));
        break;
      }
      case 'activityTaskTimedOut': {
        const sched = num(a['scheduledEventId']);
        const info = (a['failure'] as { timeoutFailureInfo?: { timeoutType?: unknown } } | undefined)
          ?.timeoutFailureInfo;
        const code = String(info?.timeoutType ?? '?');
        const kind = TIMEOUT_TYPES[code] ?? code;
        const t = act(activityTypeOf.get(sched) ?? '?').timedOut;
        t[kind] = (t[kind] ?? 0) + 1;
        break;
      }
      default:
        break;
    }
  }

  const eventTypesPerTask: Record<string, number> = {};
  for (const [type, c] of Object.entries(counts).sort((x, y) => y[1] - x[1])) {
    eventTypesPerTask[type] = Math.round((c / tasks) * 100) / 100;
  }
  const activities: HistoryStats['activities'] = {};
  for (const [type, v] of Object.entries(acts)) {
    activities[type] = { scheduleToStartMs: spread(v.s2s), startToCloseMs: spread(v.s2c), timedOut: v.timedOut };
  }
  return {
    events: events.length,
    eventTypesPerTask,
    workflowTasks: {
      queueWaitMs: spread(wftQueue),
      processingMs: spread(wftProcessing),
      failed,
      timedOut,
      failureCauses,
    },
    activities,
  };
}
