/** Registers the data keys, the operator key and the codec server (keys create, operator-key create|show, codec-server). */
import type { Command } from 'commander';
import * as codecServer from './commands/codec-server';
import * as keysCreate from './commands/keys-create';
import * as operatorKeyCreate from './commands/operator-key-create';
import type { CliContext } from './context';

export function registerCodecCommands(program: Command, ctx: CliContext): void {
  const keys = program.command('keys').description('data keys: payloads are encrypted with them');
  keysCreate.register(keys, ctx);
  const operatorKey = program
    .command('operator-key')
    .description('the operator signing key: it admits runners and signs runner commands');
  operatorKeyCreate.register(operatorKey, ctx);
  codecServer.register(program, ctx);
}
