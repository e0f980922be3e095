/* eslint-disable @typescript-eslint/no-require-imports -- heavy modules load on use (require: tsx keeps import() as ESM) */
/**
 * `runfleet runner serve`: a registered runner in the foreground. On its first start it
 * registers with the token from `runfleet runner create`; afterwards it reconnects with the
 * identity kept in its state directory. Exits 0 when the fleet purges it (after wiping that
 * directory), and when stopped with Ctrl-C or SIGTERM.
 */
import type { Command } from 'commander';
import { version } from '../../../package.json';
import { driverList, integer, port } from '../args';
import { DRIVERS, type DriverName } from '../../types';
import { commandOutput, type CliContext } from '../context';
import { runnerCommandConfig } from '../runner-config';
import { startTracing } from '../../tracing';
import { Lifecycle } from '../lifecycle';

interface Flags {
  metricsPort?: number;
  pool?: string;
  name?: string;
  slots?: number;
  dataDir?: string;
  stateDir?: string;
  token?: string;
  driver?: string[];
  drivers?: DriverName[];
  healthPort?: number;
}

export function register(runner: Command, ctx: CliContext): void {
  runner
    .command('serve')
    .description('run a runner in the foreground (registers on its first start)')
    .option('--name <name>', 'runner name, as created with `runner create` (default: local)')
    .option('--pool <pool>', 'pool it expects (the fleet says which; default: default)')
    .option('--token <token>', 'registration token from `runner create` (env RUNFLEET_RUNNER_TOKEN); first start only')
    .option(
      '--drivers <list>',
      `drivers to offer, comma-separated: ${DRIVERS.join(', ')} (default: runner.drivers, else process)`,
      driverList,
    )
    .option('--driver <driver...>', 'the same as --drivers, space-separated (older form)')
    .option(
      '--slots <n>',
      'at most this many tasks at once on this machine (default: as many as the fleet says)',
      integer(1, 256),
    )
    .option('--state-dir <dir>', 'identity, workspaces, logs and task sessions (default: <home>/runners/<name>)')
    .option('--data-dir <dir>', 'the same as --state-dir (older name)')
    .option('--health-port <port>', 'serve /livez and /readyz on this port (0: any free port)', integer(0, 65535))
    .option(
      '--metrics-port <port>',
      'serve Prometheus /metrics on this port (env RUNFLEET_METRICS_PORT; default: off)',
      port,
    )
    .action(async (flags: Flags, cmd: Command) => {
      const { config, stateDir } = runnerCommandConfig(
        ctx,
        cmd,
        { stateDir: flags.stateDir ?? flags.dataDir, name: flags.name },
        { pool: flags.pool, metricsPort: flags.metricsPort },
      );
      const out = commandOutput({ log: config.log });
      const { DEFAULT_PASS_ENV } = require('../../../workers/runner') as typeof import('../../../workers/runner');
      const { describeRunnerSchedules } = require('../../runner/schedules') as typeof import('../../runner/schedules');
      const { RunnerAgent } =
        require('../../../workers/runner-agent') as typeof import('../../../workers/runner-agent');
      const { createDrivers } = require('../../runner/drivers') as typeof import('../../runner/drivers');
      const { containerPolicy, kubernetesSettings } =
        require('../../runner/local-config') as typeof import('../../runner/local-config');
      const { installRuntime, objectStore, passEnv } = require('../runtime') as typeof import('../runtime');
      const { openConnections, runnerDataConverter } =
        require('../runner-runtime') as typeof import('../runner-runtime');
      const token = flags.token ?? config.runner.token;
      const { armCrashPoint } = require('../../runner/crash-points') as typeof import('../../runner/crash-points');
      armCrashPoint(ctx.env['RUNFLEET_CRASH_AT']);
      const driverNames = flags.drivers ?? (flags.driver ? driverList(flags.driver.join(',')) : config.runner.drivers);
      const drivers = createDrivers({
        names: driverNames,
        runner: config.runner.name,
        pool: config.runner.pool,
        stateDir,
        log: (line) => out.log(line),
        dockerSocket: config.runner.dockerSocket ?? dockerSocketFromEnv(ctx.env),
        ...(config.runner.registryAuthFile ? { registryAuthFile: config.runner.registryAuthFile } : {}),
        container: containerPolicy(config.runner),
        ...(driverNames.includes('kubernetes') ? { kubernetes: kubernetesSettings(config.runner, ctx.env) } : {}),
        ...(config.runner.taskUids ? { taskUids: config.runner.taskUids } : {}),
      });
      installRuntime(out, 'WARN', config.metrics, config.log);
      const store = objectStore(config, ctx.env, out);
      const lifecycle = new Lifecycle(out);
      lifecycle.trapSignals();
      const tracing = startTracing(config, 'runner');
      if (tracing) {
        lifecycle.add('traces', () => tracing.shutdown());
        out.log(`traces: OTLP to ${tracing.endpoint} as ${tracing.serviceName}`);
      }
      const { keys, dataConverter } = runnerDataConverter();
      const agent = new RunnerAgent({
        name: config.runner.name,
        pool: config.runner.pool,
        address: config.temporal.address,
        namespace: config.temporal.namespace,
        stateDir,
        ...(token ? { token } : {}),
        version,
        drivers,
        keys,
        dataConverter,
        allowPlaintext: config.encryption.allowPlaintext,
        connect: () => openConnections(config, ctx.env, dataConverter),
        passEnv: passEnv(ctx.env, DEFAULT_PASS_ENV),
        logRetentionMs: config.runner.logRetentionDays * 86_400_000,
        ...(store ? { objectStore: { store, intervalMs: config.store.logShipSeconds * 1_000 } } : {}),
        staleSweepMs: config.runner.sweepSeconds * 1_000,
        log: (line, fields) => out.log(line, { runner: config.runner.name, ...fields }),
        stopSignal: lifecycle.stopSignal,
        ...(flags.slots !== undefined ? { slotsCap: flags.slots } : {}),
        controlTaskQueue: config.temporal.controlTaskQueue,
        describeSchedules: (client) => describeRunnerSchedules(client, config.runner.name),
        tracing,
      });
      const healthPort = flags.healthPort ?? config.runner.healthPort;
      try {
        if (healthPort !== undefined) {
          const { startHealthServer } = require('../../runner/health') as typeof import('../../runner/health');
          // Live from now on; ready once registered, connected and enabled.
          const health = await startHealthServer({
            host: ctx.env['RUNFLEET_HEALTH_HOST'] ?? '127.0.0.1',
            port: healthPort,
            readiness: () => agent.readiness(),
          });
          lifecycle.add('health endpoints', () => health.close());
          out.log(`health: http://127.0.0.1:${health.port}/livez and /readyz`);
        }
        out.log(`runner ${config.runner.name} starting (state in ${stateDir})`);
        const ended = await agent.run();
        if (ended === 'deleted') ctx.exitCode = 0;
      } finally {
        await lifecycle.releaseAll();
      }
    });
}

/** `DOCKER_HOST=unix:///path` as Docker's own tools take it. */
function dockerSocketFromEnv(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const host = env['DOCKER_HOST'];
  return host?.startsWith('unix://') ? host.slice('unix://'.length) : undefined;
}
