/* eslint-disable @typescript-eslint/no-require-imports -- the spec's schemas load on use, not at every command's start */
/** `runfleet validate FILE`: checks a run file without starting anything. */
import type { Command } from 'commander';
import { commandOutput, type CliContext } from '../context';

export function register(program: Command, _ctx: CliContext): void {
  program
    .command('validate')
    .description('check a run file (YAML or JSON) without starting anything')
    .argument('<file>', 'run file')
    .option('--json', 'print the validated spec, with defaults, as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      const out = commandOutput(opts);
      const { spec } = await (require('../../spec/load') as typeof import('../../spec/load')).loadRunSpecFile(file);
      out.result(
        spec,
        () =>
          `${file}: ok, run "${spec.name}" in ${spec.group} with ${spec.tasks.length} task${spec.tasks.length === 1 ? '' : 's'}`,
      );
    });
}
