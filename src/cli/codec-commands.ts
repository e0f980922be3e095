/** Registers the data keys and the codec server (keys create, codec-server). */
import type { Command } from 'commander';
import type { CliContext } from './context';

export function registerCodecCommands(_program: Command, _ctx: CliContext): void {
  // Each command lives in its own file under commands/; add its register call here.
}
