/* eslint-disable @typescript-eslint/no-require-imports -- the Temporal client loads on use (require: tsx keeps import() as ESM) */
/** `runfleet fleet apply FILE`: applies a fleet file with one refresh and reports what changed. */
import type { Command } from 'commander';
import type { FleetClient } from '../../client/fleet';
import { FLEET_TASK_QUEUE } from '../../ids';
import { refreshText } from '../fleet-render';
import { integer } from '../args';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';

export function register(fleet: Command, ctx: CliContext): void {
  fleet
    .command('apply')
    .description('apply a fleet file: create or update launch templates, pools, tokens; maintain instances')
    .argument('<file>', 'fleet file (YAML or JSON)')
    .option('--task-queue <name>', 'task queue of the fleet worker', FLEET_TASK_QUEUE)
    .option('--timeout <seconds>', 'how long to wait for the fleet worker to take the request', integer(1, 86_400), 60)
    .option('--json', 'print the refresh result as JSON')
    .action(async (file: string, flags: { json?: boolean; taskQueue: string; timeout: number }, cmd: Command) => {
      const out = commandOutput(flags);
      const { loadFleetSpecFile } = require('../../fleet/load') as typeof import('../../fleet/load');
      const { input } = await loadFleetSpecFile(file);
      await withClient(commandConfig(ctx, cmd), async (client) => {
        const result = await new (fleetClient())({
          client: client.client,
          address: client.address,
          taskQueue: flags.taskQueue,
          answerTimeoutMs: flags.timeout * 1000,
        }).apply(input);
        out.result(result, () => refreshText(result));
      });
    });
}

/** Loaded on use: the Temporal client costs half a second that other commands need not pay. */
function fleetClient(): typeof FleetClient {
  return (require('../../client/fleet') as typeof import('../../client/fleet')).FleetClient;
}
