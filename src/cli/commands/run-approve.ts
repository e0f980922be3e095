/** `runfleet run approve ID TASK`: lets a `needs_approval` task start. */
import type { Command } from 'commander';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';

export function register(run: Command, ctx: CliContext): void {
  run
    .command('approve')
    .description('approve a task that waits for approval (signed with the operator key)')
    .argument('<id>', 'run id')
    .argument('<task>', 'task name')
    .option('--by <name>', 'who approves (default: $USER)')
    .option('--json', 'print the run state after the approval as JSON')
    .action(async (id: string, task: string, flags: { by?: string; json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      const by = flags.by ?? ctx.env['USER'] ?? ctx.env['USERNAME'] ?? '';
      const config = commandConfig(ctx, cmd);
      // Loaded on use: the signature code is not needed to start every other command.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { readOperatorKeyFile } = require('../../security/operator') as typeof import('../../security/operator');
      const operatorKey = readOperatorKeyFile(config.operator.keyFile)?.seed ?? null;
      await withClient(config, async (client) => {
        const state = await client.approveTask(id, task, by, { operatorKey });
        out.result(state, () => `task ${task} of ${state.id} approved by ${by}`);
      });
    });
}
