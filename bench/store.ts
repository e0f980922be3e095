/**
 * What the object store costs and how fast it is (issue 16), on this machine's real dev server
 * and moto's S3:
 *
 * 1. Upload cost per task: one in-process runner runs N one-line tasks (`echo`) with its logs
 *    shipped to the store, another the same N without a store; sides alternate, R rounds each,
 *    the same run of the bench. Reported: tasks/s of each and the ratio.
 * 2. Log lag: a task prints a timestamped line every 100 ms for 6 s; the bench reads the store
 *    every 50 ms and reports, per line, the time from its write to its first read there
 *    (store.logShipSeconds at its default, 2 s).
 * 3. Artifact round trip for 10 MB and 100 MB: producer -> consumer with `artifacts` and
 *    `artifacts_from` against the same two tasks without them (the file is made either way);
 *    the difference is the archive, upload, download and unpack.
 *
 *   npx tsx bench/store.ts [--n 200] [--rounds 2]
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createS3Store, type ObjectStore } from '../src/store/object-store';
import { readStoredLog } from '../src/store/task-logs';
import { runWorkflowId } from '../src/ids';
import type { RunState } from '../src/types';
import { stateQuery } from '../workflows/run-messages';
import { createControlWorker } from '../workers/control';
import { createRunner, type Runner } from '../workers/runner';
import { startMoto } from '../test/helpers/moto';
import { percentile } from './stats';
import { PROJECT_ROOT, resultsFile, tempDir, unique, withBenchServer } from './topology';

const { values: args } = parseArgs({
  options: { n: { type: 'string', default: '200' }, rounds: { type: 'string', default: '2' } },
});
const N = Number(args.n);
const ROUNDS = Number(args.rounds);

async function waitFinished(handle: WorkflowHandle): Promise<RunState> {
  for (;;) {
    const state = await handle.query(stateQuery);
    if (state.phase === 'finished' || state.phase === 'cancelled') return state;
    await new Promise((r) => setTimeout(r, 100));
  }
}

void withBenchServer(
  async ({ address, client, runfleetBundle }) => {
    const moto = await startMoto({ projectRoot: PROJECT_ROOT, log: (l) => console.error(l) });
    const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };
    const bucket = unique('bench').toLowerCase();
    const s3 = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, credentials });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    s3.destroy();
    const store: ObjectStore = createS3Store({
      bucket,
      prefix: 'bench/',
      region: 'us-east-1',
      endpoint: moto.endpoint,
      forcePathStyle: true,
      credentials,
    });
    const controlQueue = unique('control');
    const stops: (() => Promise<void>)[] = [];
    try {
      const connection = await NativeConnection.connect({ address });
      stops.push(() => connection.close());
      const control = await createControlWorker({
        connection,
        namespace: 'default',
        taskQueue: controlQueue,
        workflowBundle: runfleetBundle,
        requireRunnerProofs: false,
        store,
      });
      const controlDone = control.run();
      stops.push(async () => {
        control.shutdown();
        await controlDone;
      });
      const runner = async (name: string, pool: string, withStore: boolean): Promise<Runner> => {
        const c = await NativeConnection.connect({ address });
        const r = await createRunner({
          connection: c,
          namespace: 'default',
          name,
          pool,
          slots: 4,
          dataDir: join(tempDir(), name),
          passEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
          shutdownGraceMs: 1_000,
          ...(withStore ? { objectStore: { store, intervalMs: 2_000 } } : {}),
        });
        const done = r.run();
        stops.push(async () => {
          r.shutdown();
          await done;
          await c.close();
        });
        return r;
      };
      const withPool = unique('with');
      const withoutPool = unique('without');
      await runner(unique('r-with'), withPool, true);
      await runner(unique('r-without'), withoutPool, false);
      const start = (spec: unknown) =>
        client.workflow.start('runWorkflow', {
          taskQueue: controlQueue,
          workflowId: runWorkflowId('/bench', unique('r')),
          args: [{ spec }],
        });
      const timed = async (spec: unknown): Promise<{ ms: number; state: RunState; handle: WorkflowHandle }> => {
        const t0 = Date.now();
        const handle = await start(spec);
        const state = await waitFinished(handle);
        if (state.result !== 'success')
          throw new Error(`bench run failed: ${JSON.stringify(state.tasks).slice(0, 500)}`);
        return { ms: Date.now() - t0, state, handle };
      };

      // 1. Upload cost per task.
      const tasks = (pool: string, n: number) =>
        Array.from({ length: n }, (_, i) => ({ name: `t${i}`, pool, steps: [`echo "task ${i} says hello"`] }));
      await timed({
        name: 'warmup',
        tasks: [...tasks(withPool, 20), ...tasks(withoutPool, 20).map((t) => ({ ...t, name: `u${t.name}` }))],
      });
      const rates: Record<'with' | 'without', number[]> = { with: [], without: [] };
      for (let round = 0; round < ROUNDS; round++) {
        const order: ('with' | 'without')[] = round % 2 === 0 ? ['with', 'without'] : ['without', 'with'];
        for (const side of order) {
          const { ms } = await timed({
            name: `cost-${side}`,
            tasks: tasks(side === 'with' ? withPool : withoutPool, N),
          });
          rates[side].push(N / (ms / 1000));
          console.error(`bench: ${N} tasks ${side} the store: ${ms} ms (${(N / (ms / 1000)).toFixed(1)} tasks/s)`);
        }
      }
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const cost = { withStore: mean(rates.with), withoutStore: mean(rates.without) };

      // 2. Log lag through the store.
      const lagRun = await start({
        name: 'lag',
        tasks: [
          {
            name: 'ticker',
            pool: withPool,
            steps: ['i=0; while [ $i -lt 60 ]; do echo "at $(date +%s%3N)"; i=$((i+1)); sleep 0.1; done'],
          },
        ],
      });
      const seen = new Map<number, number>();
      for (;;) {
        const chunk = await readStoredLog(store, {
          runId: lagRun.workflowId,
          task: 'ticker',
          attempt: 1,
          offset: 0,
          limit: 1 << 20,
        });
        const now = Date.now();
        for (const m of chunk.data.matchAll(/^at (\d+)$/gm)) {
          const written = Number(m[1]);
          if (!seen.has(written)) seen.set(written, now - written);
        }
        if (chunk.complete) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const lags = [...seen.values()];
      const lag = {
        lines: lags.length,
        p50Ms: percentile(lags, 50),
        p95Ms: percentile(lags, 95),
        maxMs: Math.max(...lags),
      };
      console.error(
        `bench: log lag through the store over ${lag.lines} lines: p50 ${lag.p50Ms} ms, p95 ${lag.p95Ms} ms, max ${lag.maxMs} ms`,
      );

      // 3. Artifact round trip.
      const roundTrip: Record<string, { withMs: number; withoutMs: number; costMs: number }> = {};
      for (const mb of [10, 100]) {
        const pipeline = (artifacts: boolean) => ({
          name: `artifacts-${mb}`,
          tasks: [
            {
              name: 'make',
              pool: withPool,
              steps: [`head -c ${mb}M /dev/urandom > big.bin`],
              ...(artifacts ? { artifacts: ['big.bin'] } : {}),
            },
            {
              name: 'use',
              pool: withPool,
              depends: ['make'],
              steps: [artifacts ? 'test -s big.bin' : 'true'],
              ...(artifacts ? { artifacts_from: ['make'] } : {}),
            },
          ],
        });
        const without = (await timed(pipeline(false))).ms;
        const withArtifacts = (await timed(pipeline(true))).ms;
        roundTrip[`${mb}MB`] = { withMs: withArtifacts, withoutMs: without, costMs: withArtifacts - without };
        console.error(
          `bench: ${mb} MB artifact: ${withArtifacts} ms with, ${without} ms without: round trip ${withArtifacts - without} ms`,
        );
      }

      const result = {
        n: N,
        rounds: ROUNDS,
        tasksPerSecond: { ...cost, ratio: cost.withStore / cost.withoutStore },
        logLag: lag,
        artifactRoundTrip: roundTrip,
      };
      console.log(JSON.stringify(result, null, 2));
      const file = resultsFile('store');
      writeFileSync(file, JSON.stringify(result, null, 2));
      console.error(`bench: results in ${file}`);
    } finally {
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
      await moto.stop();
    }
  },
  { removeTempDirsAtEnd: true },
);
