/** `runfleet changegroup token NAME...`: prints an update token over one or more changegroups. */
import type { Command } from 'commander';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';

export function register(changegroup: Command, ctx: CliContext): void {
  changegroup
    .command('token')
    .description('print an update token over these changegroups, for --token of a mutating command')
    .argument('<names...>', 'changegroup names')
    .option('--json', 'print JSON')
    .action(async (names: string[], flags: { json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      await withClient(commandConfig(ctx, cmd), async (client) => {
        const token = await client.getUpdateToken(names);
        out.result({ token, changegroups: names }, () => token);
      });
    });
}
