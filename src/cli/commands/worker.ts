/* eslint-disable @typescript-eslint/no-require-imports -- heavy modules load on use (require: tsx keeps import() as ESM) */
/** `runfleet worker`: the control worker (run workflows), in the foreground. */
import type { Command } from 'commander';
import { integer, port } from '../args';
import { commandConfig, commandOutput, type CliContext } from '../context';
import { startTracing } from '../../tracing';
import { Lifecycle } from '../lifecycle';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description('run the control worker (run workflows) in the foreground; start more to scale')
    .option('--identity <name>', 'worker identity shown in the Web UI (default: pid@host)')
    .option(
      '--metrics-port <port>',
      'serve Prometheus /metrics on this port (env RUNFLEET_METRICS_PORT; default: off)',
      port,
    )
    .option(
      '--health-port <port>',
      'serve /livez and /readyz on this port (0: any free port; host RUNFLEET_HEALTH_HOST, default 127.0.0.1)',
      integer(0, 65535),
    )
    .action(async (flags: { identity?: string; metricsPort?: number; healthPort?: number }, cmd: Command) => {
      const config = commandConfig(ctx, cmd, { metricsPort: flags.metricsPort });
      const out = commandOutput({ log: config.log });
      // Loaded on use: the worker runtime is heavy, and most commands never need it.
      const { createControlWorker } = require('../../../workers/control') as typeof import('../../../workers/control');
      const { connectWorker, describeTemporal, installRuntime, objectStore, workerDataConverter } =
        require('../runtime') as typeof import('../runtime');
      const { connectionOptions } = require('../../connection') as typeof import('../../connection');
      const { operatorPublicKey } = require('../../security/operator') as typeof import('../../security/operator');
      const temporal = connectionOptions(config, ctx.env);
      installRuntime(out, 'INFO', config.metrics, config.log);
      const { keys } = workerDataConverter(config, out);
      const lifecycle = new Lifecycle(out);
      lifecycle.trapSignals();
      const tracing = startTracing(config, 'worker');
      if (tracing) {
        lifecycle.add('traces', () => tracing.shutdown());
        out.log(`traces: OTLP to ${tracing.endpoint} as ${tracing.serviceName}`);
      }
      try {
        const connection = await connectWorker(temporal);
        lifecycle.add('connection', () => connection.close());
        const worker = await createControlWorker({
          connection,
          namespace: config.temporal.namespace,
          taskQueue: config.temporal.controlTaskQueue,
          identity: flags.identity,
          keys,
          operatorPublicKey: operatorPublicKey(config),
          requireRunnerProofs: config.operator.requireRunnerProofs,
          store: objectStore(config, ctx.env, out),
          tracing,
        });
        const running = worker.run();
        lifecycle.add('control worker', async () => {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          await running;
        });
        if (flags.healthPort !== undefined) {
          const { startHealthServer } = require('../../runner/health') as typeof import('../../runner/health');
          // Ready while the worker polls; a worker draining or failed is not.
          const health = await startHealthServer({
            host: ctx.env['RUNFLEET_HEALTH_HOST'] ?? '127.0.0.1',
            port: flags.healthPort,
            readiness: () => {
              const state = worker.getState();
              return { ready: state === 'RUNNING', reason: `control worker ${state.toLowerCase()}` };
            },
          });
          lifecycle.add('health endpoints', () => health.close());
          out.log(`health: http://127.0.0.1:${health.port}/livez and /readyz`);
        }
        out.log(`control worker serving ${config.temporal.controlTaskQueue} at ${describeTemporal(config, temporal)}`);
        await Promise.race([lifecycle.stopped(), running]);
      } finally {
        await lifecycle.releaseAll();
      }
    });
}
