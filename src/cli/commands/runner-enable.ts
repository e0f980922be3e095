/** `runfleet runner enable NAME`: let a runner take work again. */
import type { Command } from 'commander';
import { commandOutput, type CliContext } from '../context';
import { operator, withRunnerAdmin } from '../registry-context';

export function register(runner: Command, ctx: CliContext): void {
  runner
    .command('enable')
    .description('let a runner take work again')
    .argument('<name>', 'runner name')
    .option('--reason <text>', 'why (recorded in the runner history)')
    .option('--json', 'print JSON: the runner record')
    .action(async (name: string, flags: { reason?: string; json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      await withRunnerAdmin(ctx, cmd, async (admin) => {
        const record = await admin.enable(name, { by: operator(ctx), reason: flags.reason });
        out.result(record, () => `runner ${name}: enabled (status ${record.status})`);
      });
    });
}
