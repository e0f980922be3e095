/** `runfleet run list`: runs from Temporal visibility, by group, phase and result. */
import { Option, type Command } from 'commander';
import { RUN_PHASES, RUN_RESULTS, type RunPhase, type RunResult } from '../../types';
import { integer } from '../args';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';
import { runList } from '../render';

interface Flags {
  group?: string;
  phase?: RunPhase;
  result?: RunResult;
  limit: number;
  json?: boolean;
}

export function register(run: Command, ctx: CliContext): void {
  run
    .command('list')
    .description('list runs, newest first')
    .option('--group <path>', 'runs of this group and the groups below it, e.g. /project/42')
    .addOption(new Option('--phase <phase>', 'only runs in this phase').choices(RUN_PHASES))
    .addOption(new Option('--result <result>', 'only runs with this result').choices(RUN_RESULTS))
    .option('--limit <n>', 'at most this many runs (1-1000)', integer(1, 1000), 50)
    .option('--json', 'print JSON')
    .action(async (flags: Flags, cmd: Command) => {
      const out = commandOutput(flags);
      await withClient(commandConfig(ctx, cmd), async (client) => {
        const runs = await client.listRuns({
          group: flags.group,
          phase: flags.phase,
          result: flags.result,
          limit: flags.limit,
        });
        out.result(runs, () => runList(runs));
      });
    });
}
