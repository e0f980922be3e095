/* eslint-disable @typescript-eslint/no-require-imports -- heavy modules load on use (require: tsx keeps import() as ESM) */
/** `runfleet fleet worker`: the fleet worker (fleet workflows and EC2 activities), in the foreground. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { integer, port } from '../args';
import { RunfleetError } from '../../errors';
import { FLEET_TASK_QUEUE } from '../../ids';
import type { RunfleetClient } from '../../client/client';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';
import { Lifecycle } from '../lifecycle';

interface Flags {
  metricsPort?: number;
  region?: string;
  endpoint?: string;
  taskQueue: string;
  maxInFlight: number;
  tokenSecretFile?: string;
  identity?: string;
}

export function register(fleet: Command, ctx: CliContext): void {
  fleet
    .command('worker')
    .description('run the fleet worker (fleet workflows, EC2 calls) in the foreground')
    .option('--region <region>', 'AWS region (env AWS_REGION, default us-east-1)')
    .option('--endpoint <url>', 'EC2 endpoint, e.g. moto (env RUNFLEET_EC2_ENDPOINT; default AWS)')
    .option('--task-queue <name>', 'task queue', FLEET_TASK_QUEUE)
    .option('--max-in-flight <n>', 'EC2 calls in flight at once', integer(1, 100), 8)
    .option('--token-secret-file <file>', 'secret registration tokens derive from (env RUNFLEET_FLEET_TOKEN_SECRET)')
    .option('--identity <name>', 'worker identity shown in the Web UI')
    .option(
      '--metrics-port <port>',
      'serve Prometheus /metrics on this port (env RUNFLEET_METRICS_PORT; default: off)',
      port,
    )
    .action(async (flags: Flags, cmd: Command) => {
      const config = commandConfig(ctx, cmd, { metricsPort: flags.metricsPort });
      const out = commandOutput({ log: config.log });
      const secret = flags.tokenSecretFile
        ? readFileSync(flags.tokenSecretFile, 'utf8').trim()
        : ctx.env['RUNFLEET_FLEET_TOKEN_SECRET'];
      if (!secret)
        throw new RunfleetError(
          'InvalidConfig',
          'the fleet worker needs a token secret: --token-secret-file FILE or RUNFLEET_FLEET_TOKEN_SECRET',
        );
      const { createEc2Client, createFleetWorker } =
        require('../../../workers/fleet') as typeof import('../../../workers/fleet');
      const { connectWorker, describeTemporal, installRuntime, workerDataConverter } =
        require('../runtime') as typeof import('../runtime');
      const { connectionOptions } = require('../../connection') as typeof import('../../connection');
      const { readOperatorKeyFile } = require('../../security/operator') as typeof import('../../security/operator');
      const temporal = connectionOptions(config, ctx.env);
      installRuntime(out, 'INFO', config.metrics, config.log);
      const { keys } = workerDataConverter(config, out);
      const lifecycle = new Lifecycle(out);
      lifecycle.trapSignals();
      const { RunnerAdmin } = require('../../client/runners') as typeof import('../../client/runners');
      const serve = async (client: RunfleetClient) => {
        const endpoint = flags.endpoint ?? ctx.env['RUNFLEET_EC2_ENDPOINT'];
        const ec2 = createEc2Client({
          region: flags.region ?? ctx.env['AWS_REGION'] ?? ctx.env['AWS_DEFAULT_REGION'] ?? 'us-east-1',
          ...(endpoint ? { endpoint } : {}),
        });
        lifecycle.add('EC2 client', () => ec2.destroy());
        const connection = await connectWorker(temporal);
        lifecycle.add('connection', () => connection.close());
        const worker = await createFleetWorker({
          connection,
          namespace: config.temporal.namespace,
          taskQueue: flags.taskQueue,
          ec2,
          // It signs each instance token's grant with the operator key (the control workers check it).
          registry: new RunnerAdmin(client.client, {
            controlTaskQueue: client.controlTaskQueue,
            address: client.address,
            operatorKey: readOperatorKeyFile(config.operator.keyFile)?.seed ?? null,
          }),
          tokenSecret: secret,
          maxInFlight: flags.maxInFlight,
          identity: flags.identity,
          keys,
        });
        const running = worker.run();
        lifecycle.add('fleet worker', async () => {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          await running;
        });
        out.log(
          `fleet worker serving ${flags.taskQueue} at ${describeTemporal(config, temporal)}${endpoint ? `, EC2 at ${endpoint}` : ''}`,
        );
        await Promise.race([lifecycle.stopped(), running]);
        await lifecycle.releaseAll(); // the worker stops before the registry client closes
      };
      try {
        // The registry client: launched instances get their registry runners through it.
        await withClient(config, serve, ctx.env);
      } finally {
        await lifecycle.releaseAll();
      }
    });
}
