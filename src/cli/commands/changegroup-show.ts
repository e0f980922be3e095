/** `runfleet changegroup show NAME [--json]`: a changegroup's version, limit, active and queued runs. */
import type { Command } from 'commander';
import type { ChangegroupView } from '../../changegroup/state';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';

export function register(changegroup: Command, ctx: CliContext): void {
  changegroup
    .command('show')
    .description("show a changegroup's version, limit, active runs and queued runs (in order)")
    .argument('<name>', 'changegroup name')
    .option('--json', 'print JSON')
    .action(async (name: string, flags: { json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      await withClient(commandConfig(ctx, cmd), async (client) => {
        const view = await client.getChangegroup(name);
        out.result(view, () => describe(view));
      });
    });
}

function describe(v: ChangegroupView): string {
  const lines = [
    `changegroup ${v.name}  version ${v.version}  limit ${v.limit ?? 'none'}  submitted ${v.submitted}`,
    `active (${v.active.length}):`,
    ...v.active.map((id) => `  ${id}`),
    `queued (${v.queued.length}):`,
    ...v.queued.map((id, i) => `  ${i + 1}. ${id}`),
  ];
  return lines.join('\n');
}
