/* eslint-disable @typescript-eslint/no-require-imports -- the Temporal client loads on use (require: tsx keeps import() as ESM) */
/** `runfleet fleet status NAME`: pools, instances and their states, tokens, the last refresh. */
import type { Command } from 'commander';
import type { FleetClient } from '../../client/fleet';
import { statusText } from '../fleet-render';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';

export function register(fleet: Command, ctx: CliContext): void {
  fleet
    .command('status')
    .description('show a fleet: pools, instances and their states, tokens, the last refresh')
    .argument('<name>', 'fleet name')
    .option('--json', 'print the status as JSON')
    .action(async (name: string, flags: { json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      await withClient(commandConfig(ctx, cmd), async (client) => {
        const status = await new (fleetClient())({ client: client.client, address: client.address }).status(name);
        out.result(status, () => statusText(status));
      });
    });
}

/** Loaded on use: the Temporal client costs half a second that other commands need not pay. */
function fleetClient(): typeof FleetClient {
  return (require('../../client/fleet') as typeof import('../../client/fleet')).FleetClient;
}
