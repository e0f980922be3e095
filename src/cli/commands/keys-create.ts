/** `runfleet keys create`: the data keys file that clients and control workers encrypt payloads with. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { createKeyFile } from '../../codec/keys';
import { commandConfig, commandOutput, type CliContext } from '../context';

interface Flags {
  file?: string;
  rotate?: boolean;
  scope?: string;
  json?: boolean;
}

export function register(keys: Command, ctx: CliContext): void {
  keys
    .command('create')
    .description('create the data keys file (mode 0600); with --rotate, add a new current key and keep the old ones')
    .option('--file <file>', 'key file (default: encryption.keyFile, or <home>/keys/runfleet.keys)')
    .option('--rotate', 'add a new current key to an existing file; older keys stay for decoding')
    .option(
      '--scope <scope>',
      "with --rotate: re-key one pool or runner only (pool/<name>, runner/<name>): what is sent there from now on is unreadable with that scope's older keys",
    )
    .option('--json', 'print the result as JSON')
    .action((flags: Flags, cmd: Command) => {
      const config = commandConfig(ctx, cmd);
      const file = flags.file ? resolve(ctx.cwd, flags.file) : config.encryption.keyFile;
      const result = createKeyFile(file, {
        rotate: flags.rotate === true,
        ...(flags.scope !== undefined ? { scope: flags.scope } : {}),
      });
      commandOutput({ json: flags.json }).result(result, () =>
        flags.scope
          ? `re-keyed ${flags.scope} in ${file}: new key ${result.id}\n` +
            'control workers on this host take it within seconds (copy the file to other hosts); ' +
            `the runners of ${flags.scope} receive it when they next connect`
          : flags.rotate
            ? `rotated ${file}: new current key ${result.id}; ${result.ids.length - 1} older key(s) kept for decoding\n` +
              'control workers take it within seconds (copy the file to other hosts); runners get it when they next connect'
            : `created ${file} with data key ${result.id}\n` +
              'keep it secret and back it up: payloads encrypted with it cannot be read without it',
      );
    });
}
