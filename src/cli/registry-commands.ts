/** Registers the runner registry commands (create, token, list, describe, enable, disable, purge, ping, settings, sessions). */
import type { Command } from 'commander';
import type { CliContext } from './context';

export function registerRegistryCommands(_runner: Command, _ctx: CliContext): void {
  // Each command lives in its own file under commands/; add its register call here.
}
