/** Registers the runner daemon and local commands (start, stop, restart, logs, configure, schedule). */
import type { Command } from 'commander';
import * as runnerConfigure from './commands/runner-configure';
import * as runnerLogs from './commands/runner-logs';
import * as runnerRestart from './commands/runner-restart';
import * as runnerSchedule from './commands/runner-schedule';
import * as runnerStart from './commands/runner-start';
import * as runnerStop from './commands/runner-stop';
import type { CliContext } from './context';

export function registerDaemonCommands(runner: Command, ctx: CliContext): void {
  runnerStart.register(runner, ctx);
  runnerStop.register(runner, ctx);
  runnerRestart.register(runner, ctx);
  runnerLogs.register(runner, ctx);
  runnerConfigure.register(runner, ctx);
  runnerSchedule.register(runner, ctx);
}
