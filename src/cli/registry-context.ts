/** What the runner registry commands share: a RunnerAdmin for the command, who is asking, flag parsers. */
import { hostname } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import type { RunnerAdmin } from '../client/runners';
import type { Config } from '../config';
import { parseDuration } from '../duration';
import { commandConfig, withClient, type CliContext } from './context';

/** Connects, runs `fn` with a RunnerAdmin over the command's client, and closes the connection. */
export async function withRunnerAdmin<T>(
  ctx: CliContext,
  cmd: Command,
  fn: (admin: RunnerAdmin, config: Config) => Promise<T>,
): Promise<T> {
  const config = commandConfig(ctx, cmd);
  return withClient(config, async (client) => {
    // Loaded here, like the client itself: commands that never connect do not pay for it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { RunnerAdmin: Admin } = require('../client/runners') as typeof import('../client/runners');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { readOperatorKeyFile } = require('../security/operator') as typeof import('../security/operator');
    // Read on use: commands that only read (list, describe) work without it.
    const operatorKey = readOperatorKeyFile(config.operator.keyFile)?.seed ?? null;
    const admin = new Admin(client.client, {
      controlTaskQueue: client.controlTaskQueue,
      address: client.address,
      operatorKey,
    });
    return fn(admin, config);
  });
}

/** Who runs the command, as the runner's history records it: `user@host`. */
export function operator(ctx: CliContext): string {
  return `${ctx.env['USER'] ?? ctx.env['LOGNAME'] ?? 'unknown'}@${hostname()}`;
}

/** A duration flag (`90s`, `1h`), as milliseconds. */
export function duration(value: string): number {
  const ms = parseDuration(value);
  if (ms === null || ms <= 0) throw new InvalidArgumentError('expected a duration like 30m, 1h or 2d.');
  return ms;
}

/** Accumulates a repeatable flag. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
