/**
 * The run's metrics (definitions in src/metrics.ts), recorded through the workflow's meter: the
 * SDK drops them while a worker replays history, so each event counts once however often the run
 * is replayed. The meter adds the namespace, task queue and workflow type.
 */
import { metricMeter } from '@temporalio/workflow';
import { METRICS } from '../../src/metrics';
import type { RunState, TaskStatus } from '../../src/types';

export interface RunMetrics {
  /** The run ended: its result and duration, and each of its tasks by final status. */
  runEnded(state: Pick<RunState, 'result' | 'createdAt' | 'startedAt' | 'finishedAt' | 'tasks'>): void;
  /** A task reserved by a runner `waitedMs` after it was ready. */
  taskReserved(pool: string, waitedMs: number): void;
  taskLost(): void;
  taskFound(): void;
  messageRefused(): void;
}

export function createRunMetrics(): RunMetrics {
  const m = METRICS;
  const runsFinished = metricMeter.createCounter(m.runsFinished.name, m.runsFinished.unit, m.runsFinished.description);
  const runDuration = metricMeter.createHistogram(
    m.runDuration.name,
    'int',
    m.runDuration.unit,
    m.runDuration.description,
  );
  const dispatch = metricMeter.createHistogram(
    m.taskDispatchLatency.name,
    'float',
    m.taskDispatchLatency.unit,
    m.taskDispatchLatency.description,
  );
  const tasksFinished = metricMeter.createCounter(
    m.tasksFinished.name,
    m.tasksFinished.unit,
    m.tasksFinished.description,
  );
  const lost = metricMeter.createCounter(m.tasksLost.name, m.tasksLost.unit, m.tasksLost.description);
  const found = metricMeter.createCounter(m.tasksFound.name, m.tasksFound.unit, m.tasksFound.description);
  const refused = metricMeter.createCounter(
    m.messagesRefused.name,
    m.messagesRefused.unit,
    m.messagesRefused.description,
  );
  return {
    runEnded(state) {
      runsFinished.add(1, { result: state.result });
      const from = Date.parse(state.startedAt ?? state.createdAt);
      const to = Date.parse(state.finishedAt ?? '');
      if (Number.isFinite(from) && Number.isFinite(to))
        runDuration.record(Math.max(0, to - from) / 1000, { result: state.result });
      const byStatus = new Map<TaskStatus, number>();
      for (const t of Object.values(state.tasks)) byStatus.set(t.status, (byStatus.get(t.status) ?? 0) + 1);
      for (const [status, n] of byStatus) tasksFinished.add(n, { status });
    },
    taskReserved: (pool, waitedMs) => dispatch.record(Math.max(0, waitedMs) / 1000, { pool }),
    taskLost: () => lost.add(1),
    taskFound: () => found.add(1),
    messageRefused: () => refused.add(1),
  };
}
