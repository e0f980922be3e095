/**
 * Task queue partitions and a lone poller (src/server/dynamic-config.ts): how long tasks queued
 * behind a busy single-slot worker wait once it is free, with Temporal's default of 4 partitions
 * per task queue (the baseline) and with the one partition every Temporal that Runfleet starts is
 * given. This is what a runner's pool queue is: one poller, polling only with a free slot.
 *
 *   npx tsx bench/queue-partitions.ts              # 30 queued tasks of 200 ms, 3 rounds each
 *   npx tsx bench/queue-partitions.ts --tasks 60 --rounds 5
 *
 * Each round starts a dev server in memory, a worker with one poller and one activity slot, one
 * 4 s task, then the queued ones; it reports the time from the first queued task's start to the
 * last one's, and the longest gap between two starts (200 ms plus the dispatch when nothing
 * waits). Rounds alternate between the two settings. A measurement, not a test.
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { startDevServer } from '../src/server/dev-server';
import { ensureTemporalBinary } from '../src/server/temporal-binary';
import { PROJECT_ROOT } from './topology';
import { formatTable, percentile, wholeFlag } from './stats';

const HOLD_MS = 200;
const FIRST_MS = 4_000;

/** One round: the start times of the queued tasks, in ms after the first of them. */
async function round(binary: string, partitions: number, tasks: number): Promise<number[]> {
  const server = await startDevServer({
    binary,
    headless: true,
    dynamicConfig: {
      'matching.numTaskqueueReadPartitions': partitions,
      'matching.numTaskqueueWritePartitions': partitions,
    },
  });
  const starts: number[] = [];
  const connection = await NativeConnection.connect({ address: server.address });
  const clientConnection = await Connection.connect({ address: server.address });
  try {
    const worker = await Worker.create({
      connection,
      taskQueue: 'partitions',
      workflowsPath: require.resolve('./queue-partitions-workflows'),
      activities: {
        async hold(ms: number) {
          starts.push(Date.now());
          await new Promise((r) => setTimeout(r, ms));
        },
      },
      // A runner's pool worker: one poller, polling only while a slot is free.
      maxConcurrentActivityTaskPolls: 1,
      tuner: {
        activityTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
        workflowTaskSlotSupplier: { type: 'fixed-size', numSlots: 10 },
        localActivityTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
        nexusTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
      },
    });
    await worker.runUntil(async () => {
      const client = new Client({ connection: clientConnection });
      const start = (id: string, ms: number) =>
        client.workflow.start('holdWorkflow', { taskQueue: 'partitions', workflowId: id, args: [ms] });
      const handles = [await start('first', FIRST_MS)];
      await new Promise((r) => setTimeout(r, 500));
      for (let i = 0; i < tasks; i++) handles.push(await start(`queued-${i}`, HOLD_MS));
      await Promise.all(handles.map((h) => h.result()));
    });
  } finally {
    await clientConnection.close();
    await connection.close();
    await server.stop();
  }
  const queued = starts.slice(1);
  return queued.map((t) => t - queued[0]!);
}

async function main(): Promise<void> {
  const tasks = wholeFlag('tasks', 30);
  const rounds = wholeFlag('rounds', 3);
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const binary = await ensureTemporalBinary({ projectRoot: PROJECT_ROOT, log: (l) => console.error(l) });
  const results = new Map<number, { spans: number[]; gaps: number[] }>([
    [4, { spans: [], gaps: [] }],
    [1, { spans: [], gaps: [] }],
  ]);
  for (let r = 0; r < rounds; r++) {
    for (const partitions of [4, 1]) {
      const at = await round(binary, partitions, tasks);
      const gaps = at.slice(1).map((t, i) => t - at[i]!);
      const result = results.get(partitions)!;
      result.spans.push(at[at.length - 1]!);
      result.gaps.push(Math.max(...gaps));
      console.error(`round ${r + 1}, ${partitions} partition(s): ${(at[at.length - 1]! / 1000).toFixed(1)} s`);
    }
  }
  const base = percentile(results.get(4)!.spans, 50);
  const rows = [...results].map(([partitions, { spans, gaps }]) => [
    partitions === 4 ? '4 (Temporal default, baseline)' : '1 (Runfleet)',
    (percentile(spans, 50) / 1000).toFixed(2),
    (Math.max(...spans) / 1000).toFixed(2),
    (Math.max(...gaps) / 1000).toFixed(2),
    (percentile(spans, 50) / base).toFixed(2),
  ]);
  console.log(
    `\n${tasks} tasks of ${HOLD_MS} ms queued behind one worker with one poller and one slot, ${rounds} rounds each (ideal: ${(((tasks - 1) * HOLD_MS) / 1000).toFixed(1)} s)\n`,
  );
  console.log(formatTable(['partitions', 'all started, p50 s', 'max s', 'longest gap s', 'ratio'], rows));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
