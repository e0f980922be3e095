/**
 * `runfleet runner purge NAME`: removes a runner from the fleet. Runs with tasks lost on it are
 * told; a connected runner wipes its state and exits. Asks first on a terminal.
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { RunfleetError } from '../../errors';
import { commandOutput, type CliContext } from '../context';
import { operator, withRunnerAdmin } from '../registry-context';

export function register(runner: Command, ctx: CliContext): void {
  runner
    .command('purge')
    .description('remove a runner from the fleet (a connected runner wipes itself and exits)')
    .argument('<name>', 'runner name')
    .option('--yes', 'do not ask')
    .option('--reason <text>', 'why (runs with tasks lost on it are told this)')
    .option('--json', 'print JSON: {record, final}')
    .action(async (name: string, flags: { yes?: boolean; reason?: string; json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      if (!flags.yes) {
        if (process.stdin.isTTY !== true)
          throw new RunfleetError('InvalidArgument', 'runner purge: not a terminal, nothing to ask; pass --yes');
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        const answer = await rl.question(`Purge runner ${name}? [y/N] `).finally(() => rl.close());
        if (!/^y(es)?$/i.test(answer.trim())) {
          out.line('not purged');
          return;
        }
      }
      await withRunnerAdmin(ctx, cmd, async (admin) => {
        const result = await admin.purge(name, { by: operator(ctx), reason: flags.reason });
        const last = result.final?.history.at(-1)?.reason;
        out.result(result, () =>
          result.final
            ? `runner ${name} purged${last ? `: ${last}` : ''}`
            : `runner ${name} purged; the runner has not confirmed yet (it wipes itself when it next connects)`,
        );
      });
    });
}
