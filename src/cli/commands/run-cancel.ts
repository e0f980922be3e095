/** `runfleet run cancel ID`: stops a run (started tasks are killed, the rest never start). */
import type { Command } from 'commander';
import { resolveRunWorkflowId } from '../../client/ids';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';

export function register(run: Command, ctx: CliContext): void {
  run
    .command('cancel')
    .description('stop a run: started tasks are killed, the others never start')
    .argument('<id>', 'run id')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      await withClient(commandConfig(ctx, cmd), async (client) => {
        await client.cancelRun(id);
        const workflowId = resolveRunWorkflowId(id);
        out.result({ id: workflowId, cancelRequested: true }, () => `cancel requested for ${workflowId}`);
      });
    });
}
