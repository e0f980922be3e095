/** `runfleet run restart ID [--from failed|scratch]`: a new run from a finished one, linked to it. */
import type { Command } from 'commander';
import { RunfleetError } from '../../errors';
import { commandConfig, commandOutput, runExitCode, withClient, type CliContext } from '../context';
import { followRun } from '../watch';

interface Flags {
  from: string;
  id?: string;
  wait?: boolean;
  json?: boolean;
}

export function register(run: Command, ctx: CliContext): void {
  run
    .command('restart')
    .description('start a new run from a finished one: from its failed tasks (succeeded ones are kept) or from scratch')
    .argument('<id>', 'run id of the finished run')
    .option('--from <what>', 'failed or scratch', 'failed')
    .option('--id <id>', 'run id of the new run; default: a new time-sortable id')
    .option('--wait', 'wait for the new run to end; exit 0 only if it succeeded')
    .option('--json', 'print JSON (the final state with --wait)')
    .action(async (id: string, flags: Flags, cmd: Command) => {
      if (flags.from !== 'failed' && flags.from !== 'scratch') {
        throw new RunfleetError('InvalidArgument', `--from ${flags.from}: use failed or scratch`);
      }
      const out = commandOutput(flags);
      await withClient(commandConfig(ctx, cmd), async (client) => {
        const submitted = await client.restartRun(id, { from: flags.from as 'failed' | 'scratch', id: flags.id });
        if (!flags.wait) {
          out.result(submitted, () => submitted.workflowId);
          return;
        }
        out.line(`restarted as ${submitted.workflowId}`);
        const final = flags.json
          ? await client.waitRun(submitted.workflowId, { onWait: (message) => out.error(message) })
          : await followRun(client, out, submitted.workflowId);
        if (flags.json) out.result(final, () => '');
        ctx.exitCode = runExitCode(final.result);
      });
    });
}
