/** `runfleet run list`: runs from Temporal visibility, by group, phase, result and time, a page at a time. */
import { Option, type Command } from 'commander';
import { RUN_PHASES, RUN_RESULTS, type RunPhase, type RunResult } from '../../types';
import { integer } from '../args';
import { commandConfig, commandOutput, withRunLister, type CliContext } from '../context';
import { runList } from '../render';

interface Flags {
  group?: string;
  phase?: RunPhase;
  result?: RunResult;
  since?: string;
  until?: string;
  limit: number;
  pageToken?: string;
  count?: boolean;
  json?: boolean;
}

export function register(run: Command, ctx: CliContext): void {
  run
    .command('list')
    .description('list runs, newest first, a page at a time (or count them with --count)')
    .option('--group <path>', 'runs of this group and the groups below it, e.g. /project/42')
    .addOption(new Option('--phase <phase>', 'only runs in this phase').choices(RUN_PHASES))
    .addOption(new Option('--result <result>', 'only runs with this result').choices(RUN_RESULTS))
    .option('--since <time>', 'only runs started at or after this time (ISO 8601)')
    .option('--until <time>', 'only runs started before this time (ISO 8601)')
    .option('--limit <n>', 'runs in one page (1-1000)', integer(1, 1000), 50)
    .option('--page-token <token>', 'the next page, as the previous page printed it')
    .option('--count', 'print how many runs match instead of listing them')
    .option('--json', 'print JSON: {runs, nextPageToken}, or {count}')
    .action(async (flags: Flags, cmd: Command) => {
      const out = commandOutput(flags);
      const filter = {
        group: flags.group,
        phase: flags.phase,
        result: flags.result,
        since: flags.since,
        until: flags.until,
      };
      await withRunLister(commandConfig(ctx, cmd), async (client) => {
        if (flags.count) {
          const count = await client.countRuns(filter);
          out.result({ count }, () => String(count));
          return;
        }
        const page = await client.listRunsPage({ ...filter, limit: flags.limit, pageToken: flags.pageToken });
        out.result(page, () =>
          page.nextPageToken
            ? `${runList(page.runs)}\nmore: add --page-token ${page.nextPageToken}`
            : runList(page.runs),
        );
      });
    });
}
