/* eslint-disable @typescript-eslint/no-require-imports -- heavy modules load on use (require: tsx keeps import() as ESM) */
/**
 * `runfleet up`: the embedded default, in the foreground. A Temporal dev server (SQLite file),
 * or with `--temporal ADDRESS` a Temporal service that is already there, the control worker and
 * one local runner, sharing one connection; optionally submits a run file and follows it. Ctrl-C
 * stops them in reverse order: runner, worker, connection, server.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { version } from '../../../package.json';
import { devServerHttpPort } from '../../config';
import { RunfleetError } from '../../errors';
import { sleep } from '../../sleep';
import type { LoadedRunSpec } from '../../spec/load';
import { hostPort, port } from '../args';
import { commandConfig, commandOutput, runExitCode, type CliContext } from '../context';
import { Lifecycle } from '../lifecycle';
import { webUiRunUrl, webUiWorkflowsUrl } from '../render';
import { followRun } from '../watch';
import { startTracing } from '../../tracing';

interface Flags {
  metricsPort?: number;
  port?: number;
  uiPort?: number;
  httpPort?: number;
  dataDir?: string;
  submit?: string;
  exitWhenDone?: boolean;
  temporal?: string;
}

/** The local runner of the embedded mode. */
const LOCAL_RUNNER = { name: 'local', pool: 'default', slots: 4 } as const;
/** Two workers share this process: bound the workflow cache explicitly (see STYLE.md). */
const MAX_CACHED_WORKFLOWS = 200;

export function register(program: Command, ctx: CliContext): void {
  program
    .command('up')
    .description('start a Temporal dev server, the control worker and a local runner, in the foreground')
    .option('--port <port>', 'Temporal gRPC port (default: 7233)', port)
    .option('--ui-port <port>', 'Temporal Web UI port (default: 8233)', port)
    .option('--http-port <port>', "Temporal's HTTP API port (default: the gRPC port + 10, 7243)", port)
    .option('--data-dir <dir>', 'SQLite file, server log and runner data (default: <home>/data)')
    .option(
      '--temporal <address>',
      "use this Temporal service (host:port; TLS and API key from TEMPORAL_* as for every command) instead of starting a dev server; Runfleet's search attributes are added where missing",
      hostPort,
    )
    .option('--submit <file>', 'submit this run file once everything is up, and follow it')
    .option('--exit-when-done', 'with --submit: stop after the run ends; exit 0 only if it succeeded')
    .option(
      '--metrics-port <port>',
      'serve Prometheus /metrics on this port (env RUNFLEET_METRICS_PORT; default: off)',
      port,
    )
    .action(async (flags: Flags, cmd: Command) => {
      const config = commandConfig(ctx, cmd, {
        port: flags.port,
        uiPort: flags.uiPort,
        httpPort: flags.httpPort,
        dataDir: flags.dataDir,
        metricsPort: flags.metricsPort,
      });
      const out = commandOutput({ log: config.log });
      if (flags.exitWhenDone && !flags.submit)
        throw new RunfleetError('InvalidArgument', '--exit-when-done needs --submit FILE');
      // A bad run file is reported before anything starts.
      const toSubmit: LoadedRunSpec | null = flags.submit
        ? await (require('../../spec/load') as typeof import('../../spec/load')).loadRunSpecFile(flags.submit)
        : null;
      const namespace = config.temporal.namespace;
      // Loaded on use: the worker runtime and the server helpers are heavy, and most commands never need them.
      const { Client } = require('@temporalio/client') as typeof import('@temporalio/client');
      const { RunfleetClient } = require('../../client/client') as typeof import('../../client/client');
      const { createControlWorker } = require('../../../workers/control') as typeof import('../../../workers/control');
      const { DEFAULT_PASS_ENV } = require('../../../workers/runner') as typeof import('../../../workers/runner');
      const { RunnerAgent } =
        require('../../../workers/runner-agent') as typeof import('../../../workers/runner-agent');
      const { createDrivers } = require('../../runner/drivers') as typeof import('../../runner/drivers');
      const { containerPolicy, kubernetesSettings } =
        require('../../runner/local-config') as typeof import('../../runner/local-config');
      const { runnerDataConverter } = require('../runner-runtime') as typeof import('../runner-runtime');
      const { startDevServer } = require('../../server/dev-server') as typeof import('../../server/dev-server');
      const { ensureTemporalBinary } =
        require('../../server/temporal-binary') as typeof import('../../server/temporal-binary');
      const { connectWorker, installRuntime, objectStore, passEnv } =
        require('../runtime') as typeof import('../runtime');
      const { createDataConverter, createKeyFile, loadKeyRing } =
        require('../../codec') as typeof import('../../codec');
      const dataDir = config.dataDir;
      // The quick start encrypts by default: the first `up` creates the data keys.
      if (!existsSync(config.encryption.keyFile)) {
        const created = createKeyFile(config.encryption.keyFile);
        out.log(`created data key ${created.id} in ${created.file} (payloads are encrypted with it)`);
      }
      const keys = loadKeyRing(config);
      const dataConverter = createDataConverter({ keys });
      // And the operator key: only registrations and commands it signs are admitted.
      const { createOperatorKeyFile, readOperatorKeyFile } =
        require('../../security/operator') as typeof import('../../security/operator');
      if (!existsSync(config.operator.keyFile)) {
        const created = createOperatorKeyFile(config.operator.keyFile);
        out.log(`created operator key ${created.publicKey} in ${config.operator.keyFile} (it signs runner admissions)`);
      }
      const operatorKey = readOperatorKeyFile(config.operator.keyFile);
      const operatorPublicKey = config.operator.publicKey ?? operatorKey?.publicKey ?? null;

      // Our own lines matter here; the SDK's info chatter goes to a log only when it warns.
      installRuntime(out, 'WARN', config.metrics, config.log);
      const store = objectStore(config, ctx.env, out);
      const lifecycle = new Lifecycle(out);
      lifecycle.trapSignals();
      const tracing = startTracing(config, 'up');
      if (tracing) {
        lifecycle.add('traces', () => tracing.shutdown());
        out.log(`traces: OTLP to ${tracing.endpoint} as ${tracing.serviceName}`);
      }
      try {
        let address: string;
        let httpAddress: string | undefined;
        let uiUrl: string | undefined;
        let connection: import('@temporalio/worker').NativeConnection;
        if (flags.temporal) {
          // A service of someone else's: its TLS and credentials as every command reads them.
          const { connectionOptions } = require('../../connection') as typeof import('../../connection');
          const { ensureSearchAttributes } =
            require('../../server/dev-server') as typeof import('../../server/dev-server');
          connection = await connectWorker({ ...connectionOptions(config, ctx.env), address: flags.temporal });
          lifecycle.add('connection', () => connection.close());
          await ensureSearchAttributes(connection, namespace, (l) => out.log(l));
          address = flags.temporal;
          out.log(`using the Temporal service at ${address} (no dev server)`);
        } else {
          const binary = await ensureTemporalBinary({
            projectRoot: ctx.projectRoot,
            log: (l) => out.log(l),
            env: { ...ctx.env },
          });
          if (lifecycle.stopSignal.aborted) return;
          const serverLog = join(dataDir, 'temporal.log');
          out.log(`starting Temporal dev server (data in ${dataDir}, log in ${serverLog})`);
          const server = await startDevServer({
            binary,
            dbFile: join(dataDir, 'temporal.db'),
            port: config.server.port,
            uiPort: config.server.uiPort,
            httpPort: devServerHttpPort(config.server),
            headless: false,
            namespace,
            // The server's own output is in its log file; show only our progress lines.
            log: (l) => {
              if (l.startsWith('dev-server:')) out.log(l);
            },
            logFile: serverLog,
          });
          lifecycle.add('Temporal dev server', () => server.stop());
          address = server.address;
          httpAddress = server.httpAddress;
          uiUrl = server.uiUrl ?? undefined;
          // Our own dev server: plain TCP, whatever TEMPORAL_TLS* say about other servers.
          connection = await connectWorker(server.address);
          lifecycle.add('connection', () => connection.close());
        }

        const worker = await createControlWorker({
          connection,
          namespace,
          taskQueue: config.temporal.controlTaskQueue,
          maxCachedWorkflows: MAX_CACHED_WORKFLOWS,
          keys,
          operatorPublicKey,
          requireRunnerProofs: config.operator.requireRunnerProofs,
          store,
          tracing,
        });
        const workerRunning = worker.run();
        lifecycle.add('control worker', async () => {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          await workerRunning;
        });

        const client = new Client({
          connection,
          namespace,
          dataConverter,
          ...(tracing ? { interceptors: tracing.clientInterceptors } : {}),
        });
        // The local runner registers like any other, but no one has to paste a token: `up`
        // creates it in the registry (or issues a new token) when the runner's identity is new.
        const runnerDir = join(dataDir, 'runners', LOCAL_RUNNER.name);
        const token = await localRunnerToken(
          client,
          config.temporal.controlTaskQueue,
          runnerDir,
          operatorKey?.seed ?? null,
        );
        const runnerKeys = runnerDataConverter();
        const runnerStop = new AbortController();
        const agent = new RunnerAgent({
          name: LOCAL_RUNNER.name,
          pool: LOCAL_RUNNER.pool,
          address,
          namespace,
          stateDir: runnerDir,
          ...(token ? { token } : {}),
          version,
          drivers: createDrivers({
            names: config.runner.drivers,
            runner: LOCAL_RUNNER.name,
            pool: LOCAL_RUNNER.pool,
            stateDir: runnerDir,
            ...(config.runner.dockerSocket ? { dockerSocket: config.runner.dockerSocket } : {}),
            ...(config.runner.registryAuthFile ? { registryAuthFile: config.runner.registryAuthFile } : {}),
            container: containerPolicy(config.runner),
            ...(config.runner.drivers.includes('kubernetes')
              ? { kubernetes: kubernetesSettings(config.runner, ctx.env) }
              : {}),
            ...(config.runner.taskUids ? { taskUids: config.runner.taskUids } : {}),
          }),
          keys: runnerKeys.keys,
          dataConverter: runnerKeys.dataConverter,
          // In this process, on the server's connection (closed by `up` itself, last).
          connect: async () => ({
            connection,
            client: new Client({ connection, namespace, dataConverter: runnerKeys.dataConverter }),
            close: async () => undefined,
          }),
          passEnv: passEnv(ctx.env, DEFAULT_PASS_ENV),
          logRetentionMs: config.runner.logRetentionDays * 86_400_000,
          ...(store ? { objectStore: { store, intervalMs: config.store.logShipSeconds * 1_000 } } : {}),
          staleSweepMs: config.runner.sweepSeconds * 1_000,
          log: (line, fields) => out.log(line, { runner: LOCAL_RUNNER.name, ...fields }),
          stopSignal: runnerStop.signal,
          shutdownGraceMs: 2_000,
          controlTaskQueue: config.temporal.controlTaskQueue,
          tracing,
        });
        const runnerRunning = agent.run().then(() => undefined);
        lifecycle.add(`runner ${LOCAL_RUNNER.name}`, async () => {
          runnerStop.abort();
          await runnerRunning;
        });
        await waitForReady(agent, lifecycle.stopSignal);

        // A worker or the runner failing ends `up` (with its error), like a stop request would.
        const crashed = Promise.race([workerRunning, runnerRunning]).then(() => {
          throw new Error('a worker stopped unexpectedly');
        });
        crashed.catch(() => undefined);

        out.line(`Temporal at ${address} (export TEMPORAL_ADDRESS=${address}), namespace ${namespace}`);
        if (httpAddress)
          out.line(`HTTP API at ${httpAddress} (export RUNFLEET_HTTP_ADDRESS=${httpAddress}: a faster run list)`);
        out.line(
          `control worker on ${config.temporal.controlTaskQueue}; runner "${LOCAL_RUNNER.name}" registered on pool "${LOCAL_RUNNER.pool}" with ${LOCAL_RUNNER.slots} slots`,
        );
        if (uiUrl) out.line(`Web UI: ${webUiWorkflowsUrl(uiUrl, namespace)}`);

        if (toSubmit) {
          const rf = RunfleetClient.fromClient(client, {
            controlTaskQueue: config.temporal.controlTaskQueue,
            address,
          });
          const submitted = await rf.submitRun(toSubmit.input);
          out.line(`submitted ${submitted.workflowId}`);
          if (uiUrl) out.line(`watch it: ${webUiRunUrl(uiUrl, namespace, submitted.workflowId, submitted.runId)}`);
          const watching = followRun(rf, out, submitted.workflowId, lifecycle.stopSignal);
          watching.catch(() => undefined);
          await Promise.race([watching, crashed, lifecycle.stopped()]);
          if (!lifecycle.stopSignal.aborted) {
            const final = await watching;
            if (flags.exitWhenDone) {
              ctx.exitCode = runExitCode(final.result);
              return;
            }
          } else if (flags.exitWhenDone) {
            // Stopped before the run ended: not a success.
            ctx.exitCode = 1;
          }
        }
        if (!lifecycle.stopSignal.aborted) out.line('running; press Ctrl-C to stop');
        await Promise.race([lifecycle.stopped(), crashed]);
      } finally {
        await lifecycle.releaseAll();
      }
    });
}

/**
 * A registration token for the local runner when its identity is not registered yet (first
 * `up`, or a wiped runner directory); null when it is, since it then reconnects without one.
 */
async function localRunnerToken(
  client: Client,
  controlTaskQueue: string,
  runnerDir: string,
  operatorKey: string | null,
): Promise<string | null> {
  const { identityFile, loadOrCreateIdentity } =
    require('../../runner/identity') as typeof import('../../runner/identity');
  const { RunnerAdmin } = require('../../client/runners') as typeof import('../../client/runners');
  if (existsSync(identityFile(runnerDir)) && loadOrCreateIdentity(runnerDir).registered) return null;
  const admin = new RunnerAdmin(client, { controlTaskQueue, operatorKey });
  try {
    const issued = await admin.create({
      name: LOCAL_RUNNER.name,
      pool: LOCAL_RUNNER.pool,
      settings: { slots: LOCAL_RUNNER.slots },
      by: 'runfleet up',
    });
    return issued.token;
  } catch (err) {
    // Registered before with another identity (its directory was wiped): a new token re-registers it.
    if (err instanceof RunfleetError && err.code === 'Conflict') {
      return (await admin.issueToken(LOCAL_RUNNER.name, { by: 'runfleet up' })).token;
    }
    throw err;
  }
}

/** Waits until the local runner serves (or stop is requested): the example run starts on a ready runner. */
async function waitForReady(
  agent: { readiness(): { ready: boolean; reason: string } },
  stop: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!stop.aborted && !agent.readiness().ready) {
    if (Date.now() > deadline) {
      throw new RunfleetError(
        'ComponentUnavailable',
        `the local runner did not become ready in 60s: ${agent.readiness().reason}`,
      );
    }
    await sleep(100, stop);
  }
}
