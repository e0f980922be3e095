/** `runfleet schema`: the JSON Schema of run files, for editors and other tools. */
import type { Command } from 'commander';
import { runSpecJsonSchema } from '../../spec/json-schema';
import type { CliContext } from '../context';
import { commandOutput } from '../context';

export function register(program: Command, _ctx: CliContext): void {
  program
    .command('schema')
    .description('print the JSON Schema of run files (YAML or JSON)')
    .action(() => {
      // Always JSON: it is the result itself.
      commandOutput({ json: true }).result(runSpecJsonSchema(), () => '');
    });
}
