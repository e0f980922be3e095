/** The configuration of the runner commands that act on one local runner (start, stop, logs, configure). */
import type { Command } from 'commander';
import type { ConfigFlags } from '../config';
import { loadRunnerConfig, type RunnerConfig } from '../runner/local-config';
import type { CliContext, GlobalFlags } from './context';

/** `--state-dir` and `--name`, which every local runner command takes. */
export interface RunnerDirFlags {
  stateDir?: string;
  name?: string;
}

/** Adds `--state-dir` and `--name` to a command. */
export function runnerDirOptions(cmd: Command): Command {
  return cmd
    .option('--state-dir <dir>', "the runner's state directory (default: <home>/runners/<name>)")
    .option('--name <name>', 'runner name, which picks its state directory (default: local)');
}

/**
 * Defaults < config file < `<state dir>/runner.yaml` < environment < flags; the state directory
 * is `--state-dir`, else `<home>/runners/<name>`.
 */
export function runnerCommandConfig(
  ctx: CliContext,
  cmd: Command,
  flags: RunnerDirFlags,
  more: ConfigFlags = {},
): RunnerConfig {
  const globals = cmd.optsWithGlobals<GlobalFlags>();
  return loadRunnerConfig({
    cwd: ctx.cwd,
    env: ctx.env,
    configFile: globals.config,
    stateDir: flags.stateDir,
    flags: {
      address: globals.address,
      namespace: globals.namespace,
      home: globals.home,
      runnerName: flags.name,
      ...more,
    },
  });
}
