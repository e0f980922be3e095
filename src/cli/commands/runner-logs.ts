/** `runfleet runner logs [--follow] [--lines N]`: the end of a background runner's log. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { RunfleetError } from '../../errors';
import { followLog, logFile, tailText } from '../../runner/daemon';
import { integer } from '../args';
import { commandOutput, type CliContext } from '../context';
import { runnerCommandConfig, runnerDirOptions, type RunnerDirFlags } from '../runner-config';

interface Flags extends RunnerDirFlags {
  follow?: boolean;
  lines: number;
}

export function register(runner: Command, ctx: CliContext): void {
  runnerDirOptions(runner.command('logs').description("print a background runner's log"))
    .option('-f, --follow', 'keep printing new lines until Ctrl-C (like tail -f)')
    .option('-n, --lines <n>', 'lines from the end (default: 50)', integer(0, 1_000_000), 50)
    .action(async (flags: Flags, cmd: Command) => {
      const out = commandOutput();
      const { config, stateDir } = runnerCommandConfig(ctx, cmd, flags);
      const file = logFile(stateDir);
      if (!existsSync(file) && !flags.follow) {
        throw new RunfleetError(
          'NotFound',
          `runner ${config.runner.name} has no log (${file}); start it with \`runfleet runner start\``,
        );
      }
      if (!flags.follow) {
        const text = tailText(file, flags.lines);
        if (text) out.write(text + '\n');
        return;
      }
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await followLog(file, { lines: flags.lines, write: (chunk) => out.write(chunk), signal: stop.signal });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
