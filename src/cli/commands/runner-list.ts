/** `runfleet runner list`: the fleet's runners with their status and live load, a page at a time. */
import { Option, type Command } from 'commander';
import type { RunnerSummary } from '../../client/runners';
import { RUNNER_STATUSES, type RunnerStatus } from '../../registry/types';
import { integer } from '../args';
import { commandOutput, type CliContext } from '../context';
import { dateTime, table } from '../render';
import { withRunnerAdmin } from '../registry-context';

interface Flags {
  pool?: string;
  status?: RunnerStatus;
  limit: number;
  pageToken?: string;
  json?: boolean;
}

export function register(runner: Command, ctx: CliContext): void {
  runner
    .command('list')
    .description('list the runners of the fleet (purged ones with --status deleted)')
    .option('--pool <pool>', 'only runners of this pool')
    .addOption(new Option('--status <status>', 'only runners with this status').choices(RUNNER_STATUSES))
    .option('--limit <n>', 'runners looked at in one page (1-1000)', integer(1, 1000), 50)
    .option('--page-token <token>', 'the next page, as the previous page printed it')
    .option('--json', 'print JSON: {runners, nextPageToken}')
    .action(async (flags: Flags, cmd: Command) => {
      const out = commandOutput(flags);
      await withRunnerAdmin(ctx, cmd, async (admin) => {
        const page = await admin.list({
          pool: flags.pool,
          status: flags.status,
          limit: flags.limit,
          pageToken: flags.pageToken,
        });
        out.result(page, () => {
          const text =
            page.runners.length === 0
              ? 'no runners (create one with `runfleet runner create`)'
              : runnerTable(page.runners);
          return page.nextPageToken ? `${text}\nmore: add --page-token ${page.nextPageToken}` : text;
        });
      });
    });
}

export function runnerTable(runners: RunnerSummary[]): string {
  return table(
    ['NAME', 'POOL', 'STATUS', 'ENABLED', 'LAST SEEN', 'VERSION', 'RUNNING'],
    runners.map((r) => [
      r.name,
      r.pool,
      r.status,
      r.enabled ? 'yes' : 'no',
      dateTime(r.lastSeenAt),
      r.version ?? '-',
      r.running === null ? '-' : `${r.running}/${r.slots}`,
    ]),
  );
}
