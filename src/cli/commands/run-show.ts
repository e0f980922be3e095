/** `runfleet run show ID`: the state of a run and its tasks. */
import type { Command } from 'commander';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';
import { runDetails } from '../render';

export function register(run: Command, ctx: CliContext): void {
  run
    .command('show')
    .description('show a run and its tasks')
    .argument('<id>', 'run: workflow id (run/<group>/<id>), <group>/<id>, or an id of the default group')
    .option('--json', 'print the whole state as JSON')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      await withClient(commandConfig(ctx, cmd), async (client) => {
        const state = await client.getRun(id);
        out.result(state, () => runDetails(state));
      });
    });
}
