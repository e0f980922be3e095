/**
 * `runfleet runner start [--state-dir D | --name N] [serve flags...]`: `runner serve` in the
 * background, its output in `<state dir>/runner.log`, its pid in `<state dir>/runner.pid`.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { startDaemon, type Started } from '../../runner/daemon';
import { integer } from '../args';
import { commandOutput, type CliContext, type GlobalFlags } from '../context';
import type { Output } from '../output';
import { runnerCommandConfig, runnerDirOptions, type RunnerDirFlags } from '../runner-config';

export interface StartFlags extends RunnerDirFlags {
  pool?: string;
  slots?: number;
  healthPort?: number;
  startTimeout?: number;
  json?: boolean;
}

/** Adds the options of `start` (restart takes them too). */
export function startOptions(cmd: Command): Command {
  return runnerDirOptions(cmd)
    .option('--pool <pool>', 'pool to take work from (default: runner.yaml, then default)')
    .option(
      '--slots <n>',
      'at most this many tasks at once on this machine (default: as many as the fleet says)',
      integer(1, 256),
    )
    .option('--health-port <port>', 'serve /livez and /readyz on this port (0: any free port)', integer(0, 65535))
    .option('--start-timeout <seconds>', 'how long to wait for it to serve (default: 60)', integer(1, 3600))
    .option('--json', 'print JSON')
    .argument('[serve-flags...]', 'further flags for `runner serve`')
    .allowUnknownOption(true);
}

export function register(runner: Command, ctx: CliContext): void {
  startOptions(
    runner.command('start').description('start a runner in the background (`runner serve`, detached)'),
  ).action(async (_extra: string[], flags: StartFlags, cmd: Command) => {
    const out = commandOutput(flags);
    const started = await startRunner(ctx, cmd, flags, out);
    printStarted(out, started);
  });
}

export interface StartedRunner extends Started {
  name: string;
  stateDir: string;
}

/** Starts the runner the flags name; `cmd.args` holds flags meant for `serve`. */
export async function startRunner(
  ctx: CliContext,
  cmd: Command,
  flags: StartFlags,
  out: Output,
): Promise<StartedRunner> {
  const { config, stateDir } = runnerCommandConfig(ctx, cmd, flags, { pool: flags.pool, slots: flags.slots });
  const globals = cmd.optsWithGlobals<GlobalFlags>();
  const healthPort = flags.healthPort ?? config.runner.healthPort;
  // The effective settings go to `serve` as flags, so it runs with exactly what was checked here.
  const args = [
    ...(globals.config ? ['--config', resolve(ctx.cwd, globals.config)] : []),
    '--address',
    config.temporal.address,
    '--namespace',
    config.temporal.namespace,
    '--home',
    config.home,
    'runner',
    'serve',
    '--name',
    config.runner.name,
    '--pool',
    config.runner.pool,
    ...(flags.slots === undefined ? [] : ['--slots', String(flags.slots)]),
    '--driver',
    ...config.runner.drivers,
    '--data-dir',
    stateDir,
    ...(healthPort === undefined ? [] : ['--health-port', String(healthPort)]),
    ...cmd.args,
  ];
  // The token travels in the environment: arguments are visible to every user in `ps`.
  const env = {
    ...ctx.env,
    ...(config.runner.token ? { RUNFLEET_RUNNER_TOKEN: config.runner.token } : {}),
    // `serve` takes the docker driver's socket from DOCKER_HOST when its config has none.
    ...(config.runner.dockerSocket ? { DOCKER_HOST: `unix://${config.runner.dockerSocket}` } : {}),
  };
  const started = await startDaemon({
    name: config.runner.name,
    stateDir,
    execPath: process.execPath,
    bin: resolve(ctx.projectRoot, 'bin', 'runfleet'),
    args,
    env,
    cwd: ctx.cwd,
    healthPort,
    timeoutMs: flags.startTimeout === undefined ? undefined : flags.startTimeout * 1000,
    onNote: (text) => out.line(text),
  });
  return { ...started, name: config.runner.name, stateDir };
}

export function printStarted(out: Output, s: StartedRunner): void {
  out.result(
    { name: s.name, pid: s.pid, logFile: s.logFile, pidFile: s.pidFile, stateDir: s.stateDir },
    () => `runner ${s.name} started (pid ${s.pid})\nlog: ${s.logFile}`,
  );
}
