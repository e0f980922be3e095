/**
 * The `runfleet` command line: a thin layer over the client library and the workers.
 *
 * Exit codes: 0 success; 1 a run failed or was stopped, or an internal error (with its stack);
 * 2 a usage or input error (one clear line; one line per problem for run files);
 * 3 the Temporal server cannot be reached.
 */
import { Command, CommanderError } from 'commander';
import { version } from '../../package.json';
import { RunfleetError } from '../errors';
import * as changegroupLimit from './commands/changegroup-limit';
import * as changegroupShow from './commands/changegroup-show';
import * as changegroupToken from './commands/changegroup-token';
import * as fleetApply from './commands/fleet-apply';
import * as fleetPlan from './commands/fleet-plan';
import * as fleetStatus from './commands/fleet-status';
import * as fleetWorker from './commands/fleet-worker';
import * as runApprove from './commands/run-approve';
import * as runCancel from './commands/run-cancel';
import * as runList from './commands/run-list';
import * as runRestart from './commands/run-restart';
import * as runArtifacts from './commands/run-artifacts';
import * as runLogs from './commands/run-logs';
import * as runShow from './commands/run-show';
import * as runSubmit from './commands/run-submit';
import * as runWatch from './commands/run-watch';
import * as runnerServe from './commands/runner-serve';
import * as schema from './commands/schema';
import * as serverStartDev from './commands/server-start-dev';
import * as up from './commands/up';
import * as validate from './commands/validate';
import * as worker from './commands/worker';
import { registerCodecCommands } from './codec-commands';
import { createContext, type CliContext } from './context';
import { registerDaemonCommands } from './daemon-commands';
import { registerRegistryCommands } from './registry-commands';
import { createOutput, type Output } from './output';

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;

/** Runs the CLI and returns the exit code (the caller exits with it). */
export async function main(
  argv: string[] = process.argv,
  env: Readonly<Record<string, string | undefined>> = process.env,
  cwd: string = process.cwd(),
): Promise<number> {
  const out = createOutput();
  const ctx = createContext(env, cwd);
  const program = buildProgram(ctx, out);
  try {
    await program.parseAsync(argv);
    return ctx.exitCode;
  } catch (err) {
    return reportError(err, out, env);
  }
}

export function buildProgram(ctx: CliContext, out: Output): Command {
  const program = new Command('runfleet');
  // Inherited by every command added below: commander reports, we choose the exit code.
  program
    .exitOverride()
    .configureOutput({
      writeOut: (text) => out.write(text),
      writeErr: (text) => out.error(text.replace(/\n$/, '')),
      // One line: `runfleet: unknown option '--x' (Did you mean --y?)`.
      outputError: (text, write) =>
        write(
          'runfleet: ' +
            text
              .replace(/^error: /, '')
              .trim()
              .replace(/\s*\n\s*/g, ' ') +
            '\n',
        ),
    })
    .showSuggestionAfterError(true);

  program
    .description('Durable CI runs and runner fleets on Temporal')
    .version(version, '-V, --version')
    .option(
      '--config <file>',
      'config file (default: $RUNFLEET_CONFIG, else ~/.config/runfleet/config.yaml when present)',
    )
    .option('--address <host:port>', 'Temporal address (env TEMPORAL_ADDRESS, default localhost:7233)')
    .option('--namespace <name>', 'Temporal namespace (env TEMPORAL_NAMESPACE, default default)')
    .option('--home <dir>', 'local state directory (env RUNFLEET_HOME, default ./.runfleet)')
    .option(
      '--log-format <format>',
      'log lines of workers and runners: auto, text, json (env RUNFLEET_LOG_FORMAT; auto: json unless a terminal)',
    )
    .option('--log-level <level>', "the Temporal SDK's log level: debug, info, warn, error (env RUNFLEET_LOG_LEVEL)");

  up.register(program, ctx);

  const server = program.command('server').description('a Temporal server for development');
  serverStartDev.register(server, ctx);

  worker.register(program, ctx);

  const runner = program.command('runner').description('runners: processes that execute tasks');
  runnerServe.register(runner, ctx);
  registerRegistryCommands(runner, ctx);
  registerDaemonCommands(runner, ctx);

  const fleet = program.command('fleet').description('EC2 runner fleets: plan, apply, status, and the fleet worker');
  fleetPlan.register(fleet, ctx);
  fleetApply.register(fleet, ctx);
  fleetStatus.register(fleet, ctx);
  fleetWorker.register(fleet, ctx);

  const run = program.command('run').description('submit, inspect and manage runs');
  runSubmit.register(run, ctx);
  runShow.register(run, ctx);
  runList.register(run, ctx);
  runRestart.register(run, ctx);
  runWatch.register(run, ctx);
  runCancel.register(run, ctx);
  runApprove.register(run, ctx);
  runLogs.register(run, ctx);
  runArtifacts.register(run, ctx);

  const changegroup = program
    .command('changegroup')
    .description('changegroups: update tokens and limits of active runs');
  changegroupShow.register(changegroup, ctx);
  changegroupToken.register(changegroup, ctx);
  changegroupLimit.register(changegroup, ctx);

  registerCodecCommands(program, ctx);
  schema.register(program, ctx);
  validate.register(program, ctx);
  return program;
}

/** Prints an error the way its source deserves and returns the exit code. */
export function reportError(err: unknown, out: Output, env: Readonly<Record<string, string | undefined>> = {}): number {
  if (err instanceof CommanderError) {
    // Help and version exit 0; everything else commander reports is a usage error, already printed.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof RunfleetError) {
    if (err.code === 'ServerUnreachable') {
      out.error(`runfleet: ${err.message.split('\n')[0]}`);
      return EXIT.unreachable;
    }
    if (err.isUserError) {
      out.error(`runfleet: ${err.message}`);
      return EXIT.usage;
    }
    // A known internal failure (a component missing, a worker not answering) says what to do;
    // its stack helps only those debugging Runfleet itself.
    out.error(`runfleet: ${err.message}`);
    if (env['RUNFLEET_DEBUG']) out.error(err.stack ?? '');
    return EXIT.failed;
  }
  out.error(`runfleet: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  return EXIT.failed;
}
