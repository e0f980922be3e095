/** `runfleet run approve ID TASK`: lets a `needs_approval` task start. */
import type { Command } from 'commander';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';

export function register(run: Command, ctx: CliContext): void {
  run
    .command('approve')
    .description('approve a task that waits for approval')
    .argument('<id>', 'run id')
    .argument('<task>', 'task name')
    .option('--by <name>', 'who approves (default: $USER)')
    .option('--json', 'print the run state after the approval as JSON')
    .action(async (id: string, task: string, flags: { by?: string; json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      const by = flags.by ?? ctx.env['USER'] ?? ctx.env['USERNAME'] ?? '';
      await withClient(commandConfig(ctx, cmd), async (client) => {
        const state = await client.approveTask(id, task, by);
        out.result(state, () => `task ${task} of ${state.id} approved by ${by}`);
      });
    });
}
