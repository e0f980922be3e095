/** `runfleet run watch ID`: live progress until the run ends; exit 0 only if it succeeded. */
import type { Command } from 'commander';
import { commandConfig, commandOutput, runExitCode, withClient, type CliContext } from '../context';
import { followRun } from '../watch';

export function register(run: Command, ctx: CliContext): void {
  run
    .command('watch')
    .description('follow a run until it ends (exit 0 only if it succeeded)')
    .argument('<id>', 'run id')
    .action(async (id: string, _flags: unknown, cmd: Command) => {
      const out = commandOutput();
      const config = commandConfig(ctx, cmd);
      await withClient(
        config,
        async (client) => {
          const final = await followRun(client, out, id);
          ctx.exitCode = runExitCode(final.result);
        },
        undefined,
        { onWait: (message) => out.error(message) },
      );
    });
}
