/**
 * `runfleet run submit FILE [--changegroup NAME [--limit N] [--token T]]`: validates a run file
 * and starts the run, directly or through a changegroup (which may queue it).
 */
import type { Command } from 'commander';
import { MAX_LIMIT } from '../../changegroup/state';
import { RunfleetError } from '../../errors';
import { integer } from '../args';
import { commandConfig, commandOutput, runExitCode, withClient, type CliContext } from '../context';
import { followRun } from '../watch';

interface Flags {
  id?: string;
  wait?: boolean;
  json?: boolean;
  changegroup?: string;
  limit?: number;
  token?: string;
}

export function register(run: Command, ctx: CliContext): void {
  run
    .command('submit')
    .description('validate a run file and start the run')
    .argument('<file>', 'run file (YAML or JSON)')
    .option('--id <id>', 'run id (last part of the workflow id); default: a new time-sortable id')
    .option('--wait', 'wait for the run to end; exit 0 only if it succeeded')
    .option('--json', 'print JSON (the final state with --wait)')
    .option(
      '--changegroup <name>',
      'submit through this changegroup: the run waits as queued while it has --limit active runs',
    )
    .option(
      '--limit <n>',
      'with --changegroup: set its limit of active runs (default: leave it; none at first)',
      integer(1, MAX_LIMIT),
    )
    .option(
      '--token <token>',
      'with --changegroup: an update token (`runfleet changegroup token`); refused if the changegroup changed since',
    )
    .action(async (file: string, flags: Flags, cmd: Command) => {
      const out = commandOutput(flags);
      // Validate before connecting: a bad file never needs a server.
      // Loaded on use: the spec's schemas are not needed to start every other command.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { loadRunSpecFile } = require('../../spec/load') as typeof import('../../spec/load');
      const loaded = await loadRunSpecFile(file);
      if ((flags.limit !== undefined || flags.token !== undefined) && flags.changegroup === undefined)
        throw new RunfleetError(
          'InvalidArgument',
          '--limit and --token apply to a changegroup: add --changegroup NAME',
        );
      const config = commandConfig(ctx, cmd);
      await withClient(config, async (client) => {
        const submitted = await client.submitRun(loaded.input, {
          id: flags.id,
          changegroup: flags.changegroup,
          limit: flags.limit,
          token: flags.token,
        });
        if (!flags.wait) {
          out.result(submitted, () => submitted.workflowId);
          return;
        }
        out.line(
          `submitted ${submitted.workflowId}` +
            (submitted.changegroup && !submitted.changegroup.admitted
              ? ` (queued in changegroup ${submitted.changegroup.name})`
              : ''),
        );
        const final = flags.json
          ? await client.waitRun(submitted.workflowId, { onWait: (message) => out.error(message) })
          : await followRun(client, out, submitted.workflowId);
        if (flags.json) out.result(final, () => '');
        ctx.exitCode = runExitCode(final.result);
      });
    });
}
