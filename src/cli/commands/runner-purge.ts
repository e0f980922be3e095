/**
 * `runfleet runner purge NAME`: removes a runner from the fleet. Runs with tasks lost on it are
 * told; a connected runner wipes its state and exits. Asks first on a terminal.
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { RunfleetError } from '../../errors';
import { existsSync } from 'node:fs';
import { createKeyFile } from '../../codec/keys';
import { commandConfig, commandOutput, type CliContext } from '../context';
import { operator, withRunnerAdmin } from '../registry-context';

export function register(runner: Command, ctx: CliContext): void {
  runner
    .command('purge')
    .description('remove a runner from the fleet (a connected runner wipes itself and exits)')
    .argument('<name>', 'runner name')
    .option('--yes', 'do not ask')
    .option('--reason <text>', 'why (runs with tasks lost on it are told this)')
    .option(
      '--no-rekey',
      "keep the runner's data key scope (default: re-key runner/<name> in the key file, so the purged machine reads nothing sent to a later runner of that name)",
    )
    .option('--json', 'print JSON: {record, final, rekeyed}')
    .action(
      async (
        name: string,
        flags: { yes?: boolean; reason?: string; rekey?: boolean; json?: boolean },
        cmd: Command,
      ) => {
        const out = commandOutput(flags);
        if (!flags.yes) {
          if (process.stdin.isTTY !== true)
            throw new RunfleetError('InvalidArgument', 'runner purge: not a terminal, nothing to ask; pass --yes');
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          const answer = await rl.question(`Purge runner ${name}? [y/N] `).finally(() => rl.close());
          if (!/^y(es)?$/i.test(answer.trim())) {
            out.line('not purged');
            return;
          }
        }
        await withRunnerAdmin(ctx, cmd, async (admin) => {
          const result = await admin.purge(name, { by: operator(ctx), reason: flags.reason });
          const last = result.final?.history.at(-1)?.reason;
          // The purged machine keeps the keys sealed for it: a later runner of this name gets a new one.
          const keyFile = commandConfig(ctx, cmd).encryption.keyFile;
          const rekeyed =
            flags.rekey !== false && existsSync(keyFile)
              ? createKeyFile(keyFile, { rotate: true, scope: `runner/${name}` }).id
              : null;
          out.result({ ...result, rekeyed }, () =>
            [
              result.final
                ? `runner ${name} purged${last ? `: ${last}` : ''}`
                : `runner ${name} purged; the runner has not confirmed yet (it wipes itself when it next connects)`,
              ...(rekeyed
                ? [
                    `re-keyed runner/${name} in ${keyFile} (${rekeyed}); copy the file to control workers on other hosts`,
                  ]
                : []),
            ].join('\n'),
          );
        });
      },
    );
}
