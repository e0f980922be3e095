/** `runfleet runner stop [--state-dir D | --name N] [--timeout S]`: stops a background runner. */
import type { Command } from 'commander';
import { stopDaemon, type Stopped } from '../../runner/daemon';
import { integer } from '../args';
import { commandOutput, type CliContext } from '../context';
import type { Output } from '../output';
import { runnerCommandConfig, runnerDirOptions, type RunnerDirFlags } from '../runner-config';

export interface StopFlags extends RunnerDirFlags {
  timeout?: number;
  json?: boolean;
}

export function register(runner: Command, ctx: CliContext): void {
  runnerDirOptions(runner.command('stop').description('stop a background runner (it finishes running tasks first)'))
    .option('--timeout <seconds>', 'wait this long for running tasks, then kill it (default: 30)', integer(1, 86_400))
    .option('--json', 'print JSON')
    .action(async (flags: StopFlags, cmd: Command) => {
      const out = commandOutput(flags);
      const { name, stopped } = await stopRunner(ctx, cmd, flags, out);
      out.result({ name, ...stopped }, () =>
        stopped.wasRunning ? `runner ${name} stopped (pid ${stopped.pid})` : `runner ${name} not running`,
      );
    });
}

export async function stopRunner(
  ctx: CliContext,
  cmd: Command,
  flags: StopFlags,
  out: Output,
): Promise<{ name: string; stopped: Stopped }> {
  const { config, stateDir } = runnerCommandConfig(ctx, cmd, flags);
  const stopped = await stopDaemon({
    stateDir,
    timeoutMs: flags.timeout === undefined ? undefined : flags.timeout * 1000,
    onNote: (text) => out.error(`runfleet: warning: ${text}`),
  });
  return { name: config.runner.name, stopped };
}
