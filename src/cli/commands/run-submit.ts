/** `runfleet run submit FILE`: validates a run file and starts the run. */
import type { Command } from 'commander';
import { loadRunSpecFile } from '../../spec/load';
import { commandConfig, commandOutput, runExitCode, withClient, type CliContext } from '../context';
import { followRun } from '../watch';

interface Flags {
  id?: string;
  wait?: boolean;
  json?: boolean;
}

export function register(run: Command, ctx: CliContext): void {
  run
    .command('submit')
    .description('validate a run file and start the run')
    .argument('<file>', 'run file (YAML or JSON)')
    .option('--id <id>', 'run id (last part of the workflow id); default: a new time-sortable id')
    .option('--wait', 'wait for the run to end; exit 0 only if it succeeded')
    .option('--json', 'print JSON (the final state with --wait)')
    .action(async (file: string, flags: Flags, cmd: Command) => {
      const out = commandOutput(flags);
      // Validate before connecting: a bad file never needs a server.
      const loaded = await loadRunSpecFile(file);
      const config = commandConfig(ctx, cmd);
      await withClient(config, async (client) => {
        const submitted = await client.submitRun(loaded.input, { id: flags.id });
        if (!flags.wait) {
          out.result(submitted, () => submitted.workflowId);
          return;
        }
        out.line(`submitted ${submitted.workflowId}`);
        const final = flags.json
          ? await client.waitRun(submitted.workflowId)
          : await followRun(client, out, submitted.workflowId);
        if (flags.json) out.result(final, () => '');
        ctx.exitCode = runExitCode(final.result);
      });
    });
}
