/** Registers the data keys and the codec server (keys create, codec-server). */
import type { Command } from 'commander';
import * as codecServer from './commands/codec-server';
import * as keysCreate from './commands/keys-create';
import type { CliContext } from './context';

export function registerCodecCommands(program: Command, ctx: CliContext): void {
  const keys = program.command('keys').description('data keys: payloads are encrypted with them');
  keysCreate.register(keys, ctx);
  codecServer.register(program, ctx);
}
