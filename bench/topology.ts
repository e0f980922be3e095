/**
 * What bench/run.ts and bench/runs.ts share: the headless in-memory dev server (with its signal
 * handling), the client and workflow bundles, the worker processes of one side (a `Fleet`), their
 * environment and readiness, and the temporary directories. Runs nothing on import.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { RunnerAdmin } from '../src/client/runners';
import { generateSigningKey } from '../src/security/operator';
import { WORKFLOW_BUNDLE_OPTIONS, createDataConverter } from '../src/codec';
import { runnerWorkflowId } from '../src/ids';
import { Cluster, clusterHttpAddress } from '../src/server/cluster';
import { startDevServer } from '../src/server/dev-server';
import { ensureTemporalBinary } from '../src/server/temporal-binary';
import { createControlWorker } from '../workers/control';
import { BenchChild, liveChildren, stopAllChildren } from './children';
import { mib } from './stats';

export const PROJECT_ROOT = resolve(__dirname, '..');
export const NAMESPACE = 'default';
/** Workers poll right after `run()`; give both sides the same moment to get their polls in. */
export const SETTLE_MS = 500;
/** How long a worker process may take to start (node, tsx, connect, first polls). */
export const READY_TIMEOUT_MS = 120_000;
export const RUNFLEET_BIN = join(PROJECT_ROOT, 'bin', 'runfleet');
/** The operator key of every bench fleet: it grants the runners' tokens; the control workers trust it. */
export const BENCH_OPERATOR = generateSigningKey();
export const BASELINE_WORKER = join(__dirname, 'baseline-worker.ts');

export const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (message: string) => console.error(message),
};

export const unique = (prefix: string): string => `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`;
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const round1 = (x: number): number => Math.round(x * 10) / 10;

/** Everything started for one side (of one combination); stopped in reverse order. */
export class Fleet {
  private readonly stops: (() => Promise<void>)[] = [];
  readonly done: Promise<void>[] = [];
  readonly children: BenchChild[] = [];

  constructor(private readonly address: string) {}

  async connection(): Promise<NativeConnection> {
    const c = await NativeConnection.connect({ address: this.address });
    this.stops.push(() => c.close());
    return c;
  }

  addWorker(worker: Worker): void {
    const done = worker.run();
    this.done.push(done);
    this.stops.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done.catch(() => undefined);
    });
  }

  /**
   * Starts K worker processes (all at once) and waits until each is ready; they are stopped
   * together (SIGTERM, SIGKILL after 5 s). An early exit of any fails the run.
   */
  async addChildren(
    k: number,
    start: (i: number) => BenchChild,
    ready: (child: BenchChild) => Promise<void>,
  ): Promise<void> {
    const started: BenchChild[] = [];
    this.stops.push(async () => {
      await Promise.all(started.map((c) => c.stop()));
    });
    for (let i = 0; i < k; i++) {
      const child = start(i);
      started.push(child);
      this.children.push(child);
      this.done.push(child.unexpectedExit());
    }
    await Promise.all(started.map(ready));
  }

  /**
   * K Runfleet runners as in production: each created in the registry (`RunnerAdmin.create` on
   * `controlQueue`, settings `{ slots }`: the fleet decides a runner's slots), then
   * `runfleet runner serve` with its registration token in RUNFLEET_RUNNER_TOKEN, each its own
   * process and connection (data and log under `dataDir`), ready once its /readyz answers 200 and
   * it has logged "serving pool". Their registry workflows are terminated when the fleet stops
   * (after the runners, before the control worker), so none lingers to go idle and lost.
   */
  async addRunners(
    k: number,
    o: { id: string; pool: string; slots: number; dataDir: string; client: Client; controlQueue: string },
  ): Promise<void> {
    const names = Array.from({ length: k }, (_, i) => `${o.id}-r${i}`);
    const admin = new RunnerAdmin(o.client, {
      controlTaskQueue: o.controlQueue,
      address: this.address,
      operatorKey: BENCH_OPERATOR.seed,
    });
    this.onStop(() => terminateRunners(o.client, names));
    const tokens = await Promise.all(
      names.map(async (name) => {
        const issued = await admin.create({ name, pool: o.pool, settings: { slots: o.slots }, by: 'bench' });
        return issued.token;
      }),
    );
    await this.addChildren(
      k,
      (i) => {
        const name = names[i] as string;
        return new BenchChild({
          name: `runner ${name}`,
          command: process.execPath,
          args: [
            RUNFLEET_BIN,
            'runner',
            'serve',
            '--pool',
            o.pool,
            '--name',
            name,
            // A local cap only; the fleet's settings say S too.
            '--slots',
            String(o.slots),
            '--data-dir',
            join(o.dataDir, name),
            '--health-port',
            '0',
          ],
          env: { ...childEnv(this.address), RUNFLEET_RUNNER_TOKEN: tokens[i] as string },
          // Not the project directory: no runfleet.yaml is picked up.
          cwd: o.dataDir,
          logFile: join(o.dataDir, `${name}.log`),
        });
      },
      async (child) => {
        const m = await child.waitForOutput(/health: (http:\/\/127\.0\.0\.1:\d+)\/livez/, READY_TIMEOUT_MS);
        await waitReadyz(child, `${m[1] as string}/readyz`, READY_TIMEOUT_MS);
        await child.waitForOutput(/serving pool/, READY_TIMEOUT_MS);
      },
    );
  }

  /**
   * K baseline activity workers, each its own process and connection (bench/baseline-worker.ts,
   * its log under `logDir`), ready once it has printed its ready line.
   */
  async addBaselineWorkers(
    k: number,
    o: { id: string; activityQueue: string; concurrency: number; logDir: string },
  ): Promise<void> {
    await this.addChildren(
      k,
      (i) =>
        new BenchChild({
          name: `baseline worker ${o.id}-w${i}`,
          command: process.execPath,
          args: [
            '--require',
            require.resolve('tsx/cjs'),
            BASELINE_WORKER,
            '--task-queue',
            o.activityQueue,
            '--concurrency',
            String(o.concurrency),
            '--address',
            this.address,
            '--namespace',
            NAMESPACE,
            '--identity',
            `${o.id}-w${i}`,
            '--exit-with-stdin',
          ],
          env: childEnv(this.address),
          cwd: PROJECT_ROOT,
          logFile: join(o.logDir, `w${i}.log`),
        }),
      async (child) => {
        await child.waitForOutput(/^baseline-worker ready:/m, READY_TIMEOUT_MS);
      },
    );
  }

  /** Each worker process's peak RSS (read now, while they run) and their sum, in MiB. */
  childrenRss(): { total: number; each: { name: string; pid: number; peakRssMiB: number }[] } {
    const each = this.children.map((c) => ({ name: c.name, pid: c.pid, bytes: c.peakRssBytes() }));
    return {
      total: mib(each.reduce((a, c) => a + c.bytes, 0)),
      each: each.map((c) => ({ name: c.name, pid: c.pid, peakRssMiB: mib(c.bytes) })),
    };
  }

  /** The sum of the worker processes' peak RSS (read now, while they run), in MiB. */
  childrenPeakRssMiB(): number {
    return mib(this.children.reduce((a, c) => a + c.peakRssBytes(), 0));
  }

  onStop(fn: () => Promise<void> | void): void {
    this.stops.push(async () => fn());
  }

  async stop(): Promise<void> {
    const errors: unknown[] = [];
    for (const s of this.stops.reverse()) {
      try {
        await s();
      } catch (err) {
        errors.push(err);
      }
    }
    this.stops.length = 0;
    if (errors.length > 0) throw errors[0];
  }
}

/** One side's fleet, started: its ids and queues. */
export interface RunfleetFleet {
  fleet: Fleet;
  id: string;
  controlQueue: string;
  pool: string;
}

/**
 * Runfleet's control worker here (`maxCachedWorkflows`: its workflow cache, the default when
 * absent) and K registered `runfleet runner serve` processes (S slots each), settled; stopped
 * again when the start fails. The registry is reached through a client of its own (Runfleet's
 * data converter, no keys), closed with the fleet.
 */
export async function startRunfleetFleet(o: {
  address: string;
  runfleetBundle: { code: string };
  k: number;
  slots: number;
  maxCachedWorkflows?: number;
}): Promise<RunfleetFleet> {
  const id = unique('rf');
  const controlQueue = `bench-control-${id}`;
  const pool = `bench-${id}`;
  const dataDir = tempDir();
  const fleet = new Fleet(o.address);
  fleet.onStop(() => removeTempDir(dataDir));
  try {
    fleet.addWorker(
      await createControlWorker({
        connection: await fleet.connection(),
        namespace: NAMESPACE,
        taskQueue: controlQueue,
        workflowBundle: o.runfleetBundle,
        // Admission and runner proofs as in production: the bench's own operator key.
        operatorPublicKey: BENCH_OPERATOR.publicKey,
        ...(o.maxCachedWorkflows === undefined ? {} : { maxCachedWorkflows: o.maxCachedWorkflows }),
      }),
    );
    const clientConnection = await Connection.connect({ address: o.address });
    fleet.onStop(() => clientConnection.close());
    const client = new Client({
      connection: clientConnection,
      namespace: NAMESPACE,
      dataConverter: createDataConverter(),
    });
    await fleet.addRunners(o.k, { id, pool, slots: o.slots, dataDir, client, controlQueue });
    await sleep(SETTLE_MS);
    return { fleet, id, controlQueue, pool };
  } catch (err) {
    await fleet.stop().catch(() => undefined);
    throw err;
  }
}

export interface BaselineFleet {
  fleet: Fleet;
  id: string;
  workflowQueue: string;
  activityQueue: string;
}

/**
 * A bare workflow worker here (workflow cache `maxCachedWorkflows`) and K
 * `bench/baseline-worker.ts` processes (concurrency S each), settled; stopped again when the
 * start fails. `idPrefix`: of the id, queues and worker names.
 */
export async function startBaselineFleet(o: {
  address: string;
  baselineBundle: { code: string };
  idPrefix: string;
  k: number;
  concurrency: number;
  maxCachedWorkflows: number;
}): Promise<BaselineFleet> {
  const id = unique(o.idPrefix);
  const workflowQueue = `bench-baseline-wf-${id}`;
  const activityQueue = `bench-baseline-act-${id}`;
  const logDir = tempDir();
  const fleet = new Fleet(o.address);
  fleet.onStop(() => removeTempDir(logDir));
  try {
    fleet.addWorker(
      await Worker.create({
        connection: await fleet.connection(),
        namespace: NAMESPACE,
        taskQueue: workflowQueue,
        workflowBundle: o.baselineBundle,
        maxCachedWorkflows: o.maxCachedWorkflows,
      }),
    );
    await fleet.addBaselineWorkers(o.k, { id, activityQueue, concurrency: o.concurrency, logDir });
    await sleep(SETTLE_MS);
    return { fleet, id, workflowQueue, activityQueue };
  } catch (err) {
    await fleet.stop().catch(() => undefined);
    throw err;
  }
}

/**
 * Terminates the registry workflows of runners a bench created (best effort: a runner already
 * purged, or never created, is skipped).
 */
export async function terminateRunners(client: Client, names: readonly string[]): Promise<void> {
  await Promise.all(
    names.map((name) =>
      client.workflow
        .getHandle(runnerWorkflowId(name))
        .terminate('bench over')
        .catch(() => undefined),
    ),
  );
}

/** `.bench/<name>-<timestamp>.json` in the project (the directory created). */
export function resultsFile(name: string): string {
  const outDir = join(PROJECT_ROOT, '.bench');
  mkdirSync(outDir, { recursive: true });
  return join(outDir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
}

/** The machine, for a results file. */
export function machineInfo(): {
  cpus: number;
  cpuModel: string | null;
  node: string;
  platform: NodeJS.Platform;
  stateFilesystem: StateFilesystem | null;
} {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    node: process.version,
    platform: process.platform,
    stateFilesystem: stateFilesystem(),
  };
}

/** The file system the runners' state goes to (the temporary dir), from /proc/mounts. */
export interface StateFilesystem {
  dir: string;
  mountPoint: string;
  type: string;
  /** For ext4: whether it has a journal (a jbd2 entry for its device); null for other types. */
  journal: boolean | null;
}

/**
 * Where the runners' files live matters to the runners' CPU class: on ext4 without a journal,
 * each new inode scans past the recently deleted ones (bench/README.md). Null off Linux.
 */
export function stateFilesystem(dir = tmpdir()): StateFilesystem | null {
  let mounts: string[][];
  let real: string;
  try {
    mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' '))
      .filter((f) => f.length >= 3);
    real = realpathSync(dir);
  } catch {
    return null;
  }
  const under = (mountPoint: string) => mountPoint === '/' || real === mountPoint || real.startsWith(`${mountPoint}/`);
  // The longest mount point above the dir; of two at one point, the later (it is mounted over the other).
  const mount = mounts
    .filter((f) => under(f[1] as string))
    .reduce<string[] | undefined>(
      (best, f) => (!best || (f[1] as string).length >= (best[1] as string).length ? f : best),
      undefined,
    );
  if (!mount) return null;
  const [device, mountPoint, type] = mount as [string, string, string];
  let journal: boolean | null = null;
  if (type === 'ext4') {
    const dev = basename(device);
    journal = existsSync('/proc/fs/jbd2') && readdirSync('/proc/fs/jbd2').some((e) => e.startsWith(`${dev}-`));
  }
  return { dir: real, mountPoint, type, journal };
}

/** One line for a benchmark's header: where the runners' state goes. */
export function stateFilesystemLine(): string {
  const fs = stateFilesystem();
  if (!fs) return "runners' state: file system unknown";
  const journal = fs.journal === null ? '' : fs.journal ? ' with a journal' : ' without a journal (bench/README.md)';
  return `runners' state under ${fs.dir}: ${fs.type}${journal}, mounted at ${fs.mountPoint}`;
}

/** Temporary directories (runner data, worker logs) not yet removed: also removed on Ctrl-C. */
const tempDirs = new Set<string>();
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'runfleet-bench-'));
  tempDirs.add(dir);
  return dir;
}
export function removeTempDir(dir: string): void {
  tempDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}
/** Removes every temporary directory not yet removed. */
export function removeAllTempDirs(): void {
  for (const dir of [...tempDirs]) removeTempDir(dir);
}

/**
 * A worker process's environment: this one's, minus Runfleet's and Temporal's own settings, plus
 * the dev server's address.
 */
export function childEnv(address: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(RUNFLEET|TEMPORAL)_/.test(name)) env[name] = value;
  }
  env.TEMPORAL_ADDRESS = address;
  env.TEMPORAL_NAMESPACE = NAMESPACE;
  // Benches run without data keys, as their baselines do: the runners must be told that is fine.
  env.RUNFLEET_ALLOW_PLAINTEXT = '1';
  // A `runfleet worker` child trusts the bench's operator key (admission, runner proofs).
  env.RUNFLEET_OPERATOR_PUBLIC_KEY = BENCH_OPERATOR.publicKey;
  return env;
}

/** Polls a runner's /readyz until it answers 200; fails when the runner exits or after `timeoutMs`. */
export async function waitReadyz(child: BenchChild, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    if (!child.running) throw new Error(`${child.name} exited before it was ready\n${child.tail()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      const body = await res.text();
      if (res.status === 200) return;
      last = `${res.status} ${body.trim()}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`${child.name}: ${url} not 200 within ${timeoutMs / 1000} s (${last})`);
    await sleep(50);
  }
}

/** What `withBenchServer` hands to the benchmark. */
export interface BenchServer {
  /** The Temporal CLI binary the dev server runs. */
  binary: string;
  address: string;
  /** Temporal's HTTP API, `host:port`. */
  httpAddress: string;
  /**
   * Temporal's pids (for their CPU: bench/cpu.ts reads each and its descendants): the dev server
   * (`temporal server start-dev`), or the cluster's four services and PostgreSQL.
   */
  serverPids: number[];
  /** Which Temporal, for the report's title. */
  service: string;
  /** With Runfleet's data converter (see `withBenchServer`). */
  client: Client;
  runfleetBundle: { code: string };
  baselineBundle: { code: string };
}

/**
 * Starts a headless in-memory dev server, connects a client and bundles the Runfleet and baseline
 * workflows, runs `fn`, then stops every worker process left, the client connection and the dev
 * server (also on SIGINT / SIGTERM, exiting 130). `removeTempDirsAtEnd`: also remove the
 * temporary directories left after `fn` (right after the worker processes).
 */
/** Which Temporal a bench runs on. */
export type BenchTemporal = 'dev' | 'cluster';

interface StartedServer {
  address: string;
  httpAddress: string;
  title: string;
  pids(): number[];
  stop(): Promise<void>;
}

/** The dev server in memory, or Temporal as a service (src/server/cluster.ts) in `.bench/cluster`. */
async function startBenchTemporal(kind: BenchTemporal, binary: string): Promise<StartedServer> {
  if (kind === 'cluster') {
    const cluster = new Cluster({
      projectRoot: PROJECT_ROOT,
      stateDir: join(PROJECT_ROOT, '.bench', 'cluster'),
      port: 0,
      pgPort: 0,
      namespace: NAMESPACE,
      log: (l) => console.error(l),
    });
    await cluster.destroy();
    const info = await cluster.start();
    return {
      address: info.address,
      httpAddress: clusterHttpAddress(info),
      title: 'Temporal service: 4 processes on PostgreSQL',
      pids: () => cluster.status().flatMap((p) => (p.pid === null ? [] : [p.pid])),
      stop: () => cluster.destroy(),
    };
  }
  const server = await startDevServer({
    binary,
    headless: true,
    namespace: NAMESPACE,
    log: (l) => {
      if (l.startsWith('dev-server:')) console.error(l);
    },
  });
  return {
    address: server.address,
    httpAddress: server.httpAddress,
    title: 'temporal dev server in memory',
    pids: () => {
      if (server.process.pid === undefined) throw new Error('the dev server has no pid');
      return [server.process.pid];
    },
    stop: () => server.stop(),
  };
}

export async function withBenchServer<T>(
  fn: (b: BenchServer) => Promise<T>,
  options: { removeTempDirsAtEnd?: boolean; temporal?: BenchTemporal } = {},
): Promise<T> {
  const binary = await ensureTemporalBinary({ projectRoot: PROJECT_ROOT, log: (l) => console.error(l) });
  // eslint-disable-next-line prefer-const -- assigned after the signal handlers that read it
  let server: StartedServer | undefined;
  // Handled on every signal, acted on once: under `npx tsx` a Ctrl-C arrives twice (from the
  // terminal and relayed by tsx), and an unhandled second one would kill this process before it
  // has stopped its children and the dev server. The cleanup is bounded (SIGKILL after 5 s).
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.error(`bench: ${sig}, stopping the worker processes and the dev server`);
    void stopAllChildren()
      .then(() => {
        removeAllTempDirs();
        return server?.stop();
      })
      .catch(() => undefined)
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  server = await startBenchTemporal(options.temporal ?? 'dev', binary);
  let clientConnection: Connection | undefined;
  try {
    clientConnection = await Connection.connect({ address: server.address });
    // Runfleet's data converter, as every Runfleet client has: a large spec or run state comes
    // back gzipped. Plain payloads (the baselines') pass through it unchanged. No data keys: the
    // bench measures scheduling in clear (its runner processes have no key file either).
    const client = new Client({
      connection: clientConnection,
      namespace: NAMESPACE,
      dataConverter: createDataConverter(),
    });

    console.error('bench: bundling workflows');
    const runfleetBundle = await bundleWorkflowCode({
      workflowsPath: join(PROJECT_ROOT, 'workflows', 'index.ts'),
      ...WORKFLOW_BUNDLE_OPTIONS,
      logger: quietBundlerLogger,
    });
    const baselineBundle = await bundleWorkflowCode({
      workflowsPath: join(__dirname, 'baseline-workflows.ts'),
      logger: quietBundlerLogger,
    });
    const serverPids = server.pids();
    return await fn({
      binary,
      address: server.address,
      httpAddress: server.httpAddress,
      serverPids,
      service: server.title,
      client,
      runfleetBundle,
      baselineBundle,
    });
  } finally {
    if (liveChildren() > 0) await stopAllChildren();
    if (options.removeTempDirsAtEnd) removeAllTempDirs();
    await clientConnection?.close().catch(() => undefined);
    await server.stop();
  }
}
