/**
 * `runfleet runner create NAME --pool P`: adds a runner to the fleet and prints its registration
 * token once, with what to run on the target machine.
 */
import type { Command } from 'commander';
import { checkRunnerName, parseLabels } from '../../registry/names';
import { integer } from '../args';
import { commandOutput, type CliContext } from '../context';
import { collect, duration, operator, withRunnerAdmin } from '../registry-context';

interface Flags {
  pool: string;
  label: string[];
  temporary?: boolean;
  slots?: number;
  tokenTtl?: number;
  json?: boolean;
}

export function register(runner: Command, ctx: CliContext): void {
  runner
    .command('create')
    .description('add a runner to the fleet and print its registration token (shown once)')
    .argument('<name>', 'runner name (its task queue is runner/<name>)')
    .requiredOption('--pool <pool>', 'the pool it takes work from')
    .option('--label <key=value>', 'a label (repeat for more)', collect, [])
    .option('--temporary', 'purge it automatically once it is lost (a machine that will not come back)')
    .option('--slots <n>', 'tasks run at once (default 4)', integer(1, 256))
    .option('--token-ttl <duration>', 'how long the token is valid (default 1h, at most 7d)', duration)
    .option('--json', 'print JSON')
    .action(async (name: string, flags: Flags, cmd: Command) => {
      const out = commandOutput(flags);
      checkRunnerName(name);
      const labels = parseLabels(flags.label);
      await withRunnerAdmin(ctx, cmd, async (admin, config) => {
        const issued = await admin.create({
          name,
          pool: flags.pool,
          labels,
          temporary: flags.temporary === true,
          ...(flags.slots === undefined ? {} : { settings: { slots: flags.slots } }),
          ...(flags.tokenTtl === undefined ? {} : { tokenTtlMs: flags.tokenTtl }),
          by: operator(ctx),
        });
        const { address, namespace } = config.temporal;
        const pool = issued.record.pool;
        const command = `runfleet runner serve --address ${address} --namespace ${namespace} --name ${name} --pool ${pool} --token ${issued.token}`;
        const env = {
          TEMPORAL_ADDRESS: address,
          TEMPORAL_NAMESPACE: namespace,
          RUNFLEET_RUNNER_TOKEN: issued.token,
        };
        out.result(
          {
            name,
            pool,
            token: issued.token,
            tokenId: issued.tokenId,
            expiresAt: issued.expiresAt,
            address,
            namespace,
            command,
            env,
          },
          () =>
            [
              `runner ${name} created in pool ${pool}; its token is valid until ${issued.expiresAt} and is shown only now.`,
              '',
              'On the target machine, run:',
              '',
              `  ${command}`,
              '',
              'or with the environment:',
              '',
              ...Object.entries(env).map(([k, v]) => `  export ${k}=${v}`),
              `  runfleet runner serve --name ${name} --pool ${pool}`,
            ].join('\n'),
        );
      });
    });
}
