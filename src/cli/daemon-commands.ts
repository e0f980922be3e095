/** Registers the runner daemon and local commands (start, stop, restart, logs, configure, schedule). */
import type { Command } from 'commander';
import type { CliContext } from './context';

export function registerDaemonCommands(_runner: Command, _ctx: CliContext): void {
  // Each command lives in its own file under commands/; add its register call here.
}
