/**
 * One process of bench/runners.ts that holds many idle runners (a Node process per runner is
 * ~100 MiB: a hundred of them do not fit next to the server on a small machine), or the
 * baseline's workflow worker:
 *
 *   node --require tsx/cjs bench/runner-host.ts agents --spec FILE
 *     FILE: {"address", "namespace", "agents": [{"name", "pool", "token", "stateDir"}]}.
 *     One RunnerAgent (workers/runner-agent.ts) per entry, as `runfleet runner serve` runs it: its own
 *     connections, key ring and process driver; registers with the token, then serves.
 *   node --require tsx/cjs bench/runner-host.ts ping-workers --spec FILE
 *     FILE: {"address", "namespace", "queues": [...]}. The baseline's runners: one bare worker per
 *     queue serving the baselines' activities (`noop` is the ping), on one shared connection.
 *   node --require tsx/cjs bench/runner-host.ts liveness-worker --address A --namespace N --task-queue Q
 *     The baseline's workflow worker (bench/liveness-workflows.ts), its own process so that its
 *     CPU can be read as the control worker's is.
 *
 * Prints `runner-host ready: ...` once every agent is ready (registered, serving) or every worker
 * polls. Stops on SIGTERM / SIGINT, or when its stdin closes (the bench keeps a pipe open, so a
 * host does not outlive a bench killed without a chance to clean up); exits 0 after a clean stop.
 */
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { version } from '../package.json';
import { runnerDataConverter } from '../src/cli/runner-runtime';
import { createDrivers } from '../src/runner/drivers';
import { RunnerAgent } from '../workers/runner-agent';
import { baselineActivities } from './baseline-activities';
import { installBenchRuntime } from './runtime';

interface AgentsSpec {
  address: string;
  namespace: string;
  agents: { name: string; pool: string; token: string; stateDir: string }[];
}

interface PingSpec {
  address: string;
  namespace: string;
  queues: string[];
}

/** Stops when signalled or when stdin closes. */
function stopSignal(): AbortSignal {
  const stop = new AbortController();
  const why = (reason: string) => () => {
    if (stop.signal.aborted) return;
    console.error(`runner-host: ${reason}, stopping`);
    stop.abort();
  };
  process.once('SIGTERM', why('SIGTERM'));
  process.once('SIGINT', why('SIGINT'));
  process.stdin.on('end', why('stdin closed')).resume();
  return stop.signal;
}

function flag(argv: string[], name: string): string {
  const i = argv.indexOf(name);
  const value = i >= 0 ? argv[i + 1] : undefined;
  if (value === undefined || value === '') throw new Error(`${name} takes a value`);
  return value;
}

async function agents(spec: AgentsSpec, stop: AbortSignal): Promise<void> {
  const list = spec.agents.map((a) => {
    const { keys, dataConverter } = runnerDataConverter();
    return new RunnerAgent({
      name: a.name,
      pool: a.pool,
      address: spec.address,
      namespace: spec.namespace,
      stateDir: a.stateDir,
      token: a.token,
      version,
      drivers: createDrivers({ names: ['process'], runner: a.name, pool: a.pool, stateDir: a.stateDir }),
      keys,
      dataConverter,
      connect: async () => {
        const connection = await NativeConnection.connect({ address: spec.address });
        const clientConnection = await Connection.connect({ address: spec.address });
        return {
          connection,
          client: new Client({ connection: clientConnection, namespace: spec.namespace, dataConverter }),
          async close() {
            await clientConnection.close().catch(() => undefined);
            await connection.close().catch(() => undefined);
          },
        };
      },
      passEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      logRetentionMs: 86_400_000,
      log: (line) => console.log(`${a.name}: ${line}`),
      stopSignal: stop,
      shutdownGraceMs: 1_000,
    });
  });
  const running = Promise.all(list.map((agent) => agent.run()));
  const ready = (async () => {
    while (!stop.aborted && !list.every((agent) => agent.readiness().ready)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!stop.aborted) console.log(`runner-host ready: ${list.length} agents, pid ${process.pid}`);
  })();
  await Promise.all([running, ready]);
}

async function pingWorkers(spec: PingSpec, stop: AbortSignal): Promise<void> {
  const connection = await NativeConnection.connect({ address: spec.address });
  try {
    const workers = await Promise.all(
      spec.queues.map((taskQueue) =>
        Worker.create({
          connection,
          namespace: spec.namespace,
          taskQueue,
          activities: baselineActivities,
          maxConcurrentActivityTaskExecutions: 1,
          shutdownGraceTime: 1_000,
        }),
      ),
    );
    await runWorkers(workers, stop, `${workers.length} ping workers`);
  } finally {
    await connection.close();
  }
}

async function livenessWorker(argv: string[], stop: AbortSignal): Promise<void> {
  const address = flag(argv, '--address');
  const connection = await NativeConnection.connect({ address });
  try {
    const worker = await Worker.create({
      connection,
      namespace: flag(argv, '--namespace'),
      taskQueue: flag(argv, '--task-queue'),
      workflowsPath: require.resolve('./liveness-workflows'),
      // The control worker's default cache: both sides keep every runner's workflow in memory.
      maxCachedWorkflows: 500,
    });
    await runWorkers([worker], stop, 'liveness workflow worker');
  } finally {
    await connection.close();
  }
}

async function runWorkers(workers: Worker[], stop: AbortSignal, what: string): Promise<void> {
  const running = Promise.all(workers.map((w) => w.run()));
  const shutdown = () => {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  };
  stop.addEventListener('abort', shutdown, { once: true });
  while (workers.some((w) => w.getState() === 'INITIALIZED')) await new Promise((r) => setTimeout(r, 5));
  if (workers.every((w) => w.getState() === 'RUNNING')) console.log(`runner-host ready: ${what}, pid ${process.pid}`);
  await running;
}

async function main(): Promise<void> {
  const [mode, ...argv] = process.argv.slice(2);
  installBenchRuntime({ shutdownSignals: [] });
  const stop = stopSignal();
  switch (mode) {
    case 'agents':
      return agents(JSON.parse(readFileSync(flag(argv, '--spec'), 'utf8')) as AgentsSpec, stop);
    case 'ping-workers':
      return pingWorkers(JSON.parse(readFileSync(flag(argv, '--spec'), 'utf8')) as PingSpec, stop);
    case 'liveness-worker':
      return livenessWorker(argv, stop);
    default:
      throw new Error(`unknown mode ${mode ?? '(none)'}: agents, ping-workers or liveness-worker`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('runner-host failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
