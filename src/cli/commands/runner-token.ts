/** `runfleet runner token NAME [--revoke]`: a new registration token (the old one dies), or none. */
import type { Command } from 'commander';
import { commandOutput, type CliContext } from '../context';
import { duration, operator, withRunnerAdmin } from '../registry-context';

interface Flags {
  revoke?: boolean;
  ttl?: number;
  reason?: string;
  json?: boolean;
}

export function register(runner: Command, ctx: CliContext): void {
  runner
    .command('token')
    .description('issue a new registration token for a runner (the previous one stops working), or revoke it')
    .argument('<name>', 'runner name')
    .option('--revoke', 'revoke the current token instead')
    .option('--ttl <duration>', 'how long the new token is valid (default 1h, at most 7d)', duration)
    .option('--reason <text>', 'why (recorded in the runner history)')
    .option('--json', 'print JSON')
    .action(async (name: string, flags: Flags, cmd: Command) => {
      const out = commandOutput(flags);
      await withRunnerAdmin(ctx, cmd, async (admin, config) => {
        if (flags.revoke) {
          const record = await admin.revokeToken(name, { by: operator(ctx), reason: flags.reason });
          out.result({ name, token: record.token }, () => `runner ${name}: token ${record.token?.id ?? ''} revoked`);
          return;
        }
        const issued = await admin.issueToken(name, {
          by: operator(ctx),
          ...(flags.ttl === undefined ? {} : { ttlMs: flags.ttl }),
        });
        const { address, namespace } = config.temporal;
        const command = `runfleet runner serve --address ${address} --namespace ${namespace} --name ${name} --pool ${issued.record.pool} --token ${issued.token}`;
        out.result({ name, token: issued.token, tokenId: issued.tokenId, expiresAt: issued.expiresAt, command }, () =>
          [
            `runner ${name}: new token, valid until ${issued.expiresAt} (shown only now; the previous one no longer works):`,
            '',
            `  ${command}`,
          ].join('\n'),
        );
      });
    });
}
