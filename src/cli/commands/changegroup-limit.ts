/** `runfleet changegroup limit NAME N|none --token T`: sets a changegroup's limit of active runs. */
import { InvalidArgumentError, type Command } from 'commander';
import { MAX_LIMIT } from '../../changegroup/state';
import { integer } from '../args';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';

export function register(changegroup: Command, ctx: CliContext): void {
  changegroup
    .command('limit')
    .description('set how many runs of a changegroup may be active at once (a higher limit admits queued runs)')
    .argument('<name>', 'changegroup name')
    .argument('<n>', `active runs at most, 1 to ${MAX_LIMIT}, or "none"`, parseLimit)
    .requiredOption(
      '--token <token>',
      'an update token (`runfleet changegroup token NAME`): refused if the changegroup changed since',
    )
    .option('--json', 'print JSON')
    .action(async (name: string, limit: number | null, flags: { token: string; json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      await withClient(commandConfig(ctx, cmd), async (client) => {
        const view = await client.setChangegroupLimit(name, limit, { token: flags.token });
        out.result(view, () => `changegroup ${view.name}: limit ${view.limit ?? 'none'} (version ${view.version})`);
      });
    });
}

function parseLimit(value: string): number | null {
  if (value.trim() === 'none') return null;
  try {
    return integer(1, MAX_LIMIT)(value);
  } catch {
    throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_LIMIT}, or "none".`);
  }
}
