/**
 * One bare activity worker of the dispatch benchmark's baselines, as its own process (the
 * counterpart of a Runfleet runner started with `runfleet runner serve`):
 *
 *   node --require tsx/cjs bench/baseline-worker.ts --task-queue Q --concurrency S --address A
 *   npx tsx bench/baseline-worker.ts --task-queue Q --concurrency S --address A [--namespace NS] [--identity ID]
 *     [--exit-with-stdin]
 *
 * Serves the baselines' activities (`noop`, `spawnTrue`) on Q with
 * `maxConcurrentActivityTaskExecutions = S`, on its own connection. Prints
 * `baseline-worker ready: ...` on stdout once the worker runs (polls). Stops on SIGTERM or SIGINT,
 * and with `--exit-with-stdin` when its stdin closes (the bench keeps a pipe open, so a worker
 * does not outlive a bench killed without a chance to clean up); exits 0 after a clean stop.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { baselineActivities } from './baseline-activities';
import { installBenchRuntime } from './runtime';

interface Args {
  taskQueue: string;
  concurrency: number;
  address: string;
  namespace: string;
  identity?: string;
  exitWithStdin: boolean;
}

function parseArgs(argv: string[]): Args {
  const got: Record<string, string> = {};
  let exitWithStdin = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--exit-with-stdin') {
      exitWithStdin = true;
      continue;
    }
    const [flag, inline] = (argv[i] as string).split('=', 2) as [string, string | undefined];
    if (!['--task-queue', '--concurrency', '--address', '--namespace', '--identity'].includes(flag)) {
      throw new Error(`unknown argument ${argv[i]}`);
    }
    const value = inline ?? argv[++i];
    if (value === undefined || value === '') throw new Error(`${flag} takes a value`);
    got[flag] = value;
  }
  const concurrency = Number(got['--concurrency'] ?? '');
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('--concurrency takes an integer >= 1');
  const taskQueue = got['--task-queue'];
  const address = got['--address'];
  if (!taskQueue || !address) throw new Error('--task-queue and --address are required');
  return {
    taskQueue,
    concurrency,
    address,
    namespace: got['--namespace'] ?? 'default',
    identity: got['--identity'],
    exitWithStdin,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // As in the bench process: the SDK's WARN and above, minus the "not polling" notice of an
  // activity-only worker; the core's logs at ERROR only. No runtime signal handlers: stopped below.
  installBenchRuntime({ shutdownSignals: [] });
  const connection = await NativeConnection.connect({ address: args.address });
  try {
    const worker = await Worker.create({
      connection,
      namespace: args.namespace,
      taskQueue: args.taskQueue,
      ...(args.identity ? { identity: args.identity } : {}),
      activities: baselineActivities,
      maxConcurrentActivityTaskExecutions: args.concurrency,
      shutdownGraceTime: 1_000,
    });
    const stop = (why: string) => {
      if (worker.getState() !== 'RUNNING') return;
      console.error(`baseline-worker: ${why}, stopping`);
      worker.shutdown();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    if (args.exitWithStdin) {
      process.stdin.on('end', () => stop('stdin closed')).resume();
    }
    const running = worker.run();
    while (worker.getState() === 'INITIALIZED') await new Promise((r) => setTimeout(r, 5));
    if (worker.getState() === 'RUNNING') {
      console.log(
        `baseline-worker ready: task queue ${args.taskQueue}, concurrency ${args.concurrency}, ` +
          `at ${args.address}, pid ${process.pid}`,
      );
    }
    await running;
  } finally {
    await connection.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('baseline-worker failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
