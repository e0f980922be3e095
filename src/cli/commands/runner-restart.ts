/** `runfleet runner restart [start flags...]`: stop (if running), then start. */
import type { Command } from 'commander';
import { integer } from '../args';
import { commandOutput, type CliContext } from '../context';
import { printStarted, startOptions, startRunner, type StartFlags } from './runner-start';
import { stopRunner } from './runner-stop';

interface Flags extends StartFlags {
  timeout?: number;
}

export function register(runner: Command, ctx: CliContext): void {
  startOptions(runner.command('restart').description('restart a background runner'))
    .option(
      '--timeout <seconds>',
      'stop: wait this long for running tasks, then kill it (default: 30)',
      integer(1, 86_400),
    )
    .action(async (_extra: string[], flags: Flags, cmd: Command) => {
      const out = commandOutput(flags);
      const { name, stopped } = await stopRunner(ctx, cmd, flags, out);
      out.line(stopped.wasRunning ? `runner ${name} stopped (pid ${stopped.pid})` : `runner ${name} was not running`);
      printStarted(out, await startRunner(ctx, cmd, flags, out));
    });
}
