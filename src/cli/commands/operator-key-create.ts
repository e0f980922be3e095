/**
 * `runfleet operator-key create`: the operator signing key (mode 0600). It signs registration
 * token grants and runner commands; control workers are configured with its public half
 * (`operator.publicKey` / RUNFLEET_OPERATOR_PUBLIC_KEY) and admit nothing it did not sign.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type * as Operator from '../../security/operator';
import { commandConfig, commandOutput, type CliContext } from '../context';

interface Flags {
  file?: string;
  json?: boolean;
}

export function register(operatorKey: Command, ctx: CliContext): void {
  operatorKey
    .command('create')
    .description('create the operator signing key (mode 0600) and print its public key for the control workers')
    .option('--file <file>', 'key file (default: operator.keyFile, or operator.key beside the data keys)')
    .option('--json', 'print the result as JSON')
    .action((flags: Flags, cmd: Command) => {
      const config = commandConfig(ctx, cmd);
      const file = flags.file ? resolve(ctx.cwd, flags.file) : config.operator.keyFile;
      const key = operator().createOperatorKeyFile(file);
      commandOutput({ json: flags.json }).result({ file, publicKey: key.publicKey }, () =>
        [
          `created ${file}; its public key is`,
          '',
          `  ${key.publicKey}`,
          '',
          'Configure every control worker with it (operator.publicKey, or RUNFLEET_OPERATOR_PUBLIC_KEY);',
          'keep the file secret: whoever holds it admits runners and purges them.',
        ].join('\n'),
      );
    });

  operatorKey
    .command('show')
    .description('print the public key of the operator signing key')
    .option('--file <file>', 'key file (default: operator.keyFile)')
    .option('--json', 'print the result as JSON')
    .action((flags: Flags, cmd: Command) => {
      const config = commandConfig(ctx, cmd);
      const file = flags.file ? resolve(ctx.cwd, flags.file) : config.operator.keyFile;
      const key = operator().readOperatorKeyFile(file);
      const out = commandOutput({ json: flags.json });
      if (!key) {
        out.result({ file, publicKey: null }, () => `no operator key at ${file} (runfleet operator-key create)`);
        return;
      }
      out.result({ file, publicKey: key.publicKey }, () => key.publicKey);
    });
}

/** Loaded on use: the signature code is not needed to start every other command. */
function operator(): typeof Operator {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../../security/operator') as typeof Operator;
}
