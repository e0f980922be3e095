/** `runfleet schema`: the JSON Schema of run files, for editors and other tools. */
import type { Command } from 'commander';
import type { CliContext } from '../context';
import { commandOutput } from '../context';

export function register(program: Command, _ctx: CliContext): void {
  program
    .command('schema')
    .description('print the JSON Schema of run files (YAML or JSON)')
    .action(() => {
      // Always JSON: it is the result itself.
      commandOutput({ json: true }).result(
        // eslint-disable-next-line @typescript-eslint/no-require-imports -- the schema module loads on use
        (require('../../spec/json-schema') as typeof import('../../spec/json-schema')).runSpecJsonSchema(),
        () => '',
      );
    });
}
