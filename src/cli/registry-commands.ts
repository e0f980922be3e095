/** Registers the runner registry commands (create, token, list, describe, enable, disable, purge, ping, settings, sessions, stop-session). */
import type { Command } from 'commander';
import * as runnerCreate from './commands/runner-create';
import * as runnerDescribe from './commands/runner-describe';
import * as runnerDisable from './commands/runner-disable';
import * as runnerEnable from './commands/runner-enable';
import * as runnerList from './commands/runner-list';
import * as runnerPing from './commands/runner-ping';
import * as runnerPurge from './commands/runner-purge';
import * as runnerSessions from './commands/runner-sessions';
import * as runnerSettings from './commands/runner-settings';
import * as runnerToken from './commands/runner-token';
import type { CliContext } from './context';

export function registerRegistryCommands(runner: Command, ctx: CliContext): void {
  runnerCreate.register(runner, ctx);
  runnerToken.register(runner, ctx);
  runnerList.register(runner, ctx);
  runnerDescribe.register(runner, ctx);
  runnerEnable.register(runner, ctx);
  runnerDisable.register(runner, ctx);
  runnerSettings.register(runner, ctx);
  runnerPing.register(runner, ctx);
  runnerSessions.register(runner, ctx);
  runnerPurge.register(runner, ctx);
}
