/**
 * `runfleet runner configure [--state-dir D | --name N] [--set key=value]... [--show]`: this
 * runner's settings in `<state dir>/runner.yaml`. Without `--set` on a terminal, asks for each.
 */
import type { Command } from 'commander';
import { RunfleetError } from '../../errors';
import {
  displayValue,
  effectiveSettings,
  parseSetting,
  promptSettings,
  readRunnerSettings,
  settingsProblems,
  writeRunnerSettings,
  type RunnerSettings,
} from '../../runner/local-config';
import { commandOutput, type CliContext } from '../context';
import { runnerCommandConfig, runnerDirOptions, type RunnerDirFlags } from '../runner-config';

interface Flags extends RunnerDirFlags {
  set: string[];
  show?: boolean;
  json?: boolean;
}

export function register(runner: Command, ctx: CliContext): void {
  runnerDirOptions(
    runner.command('configure').description("show or change a runner's settings (<state dir>/runner.yaml)"),
  )
    .option('--set <key=value>', 'set a key (repeatable); without it, asks for each key on a terminal', collect, [])
    .option('--show', 'print the effective settings (the token masked)')
    .option('--json', 'print JSON (with --show)')
    .action(async (flags: Flags, cmd: Command) => {
      const out = commandOutput(flags);
      // Loading the whole configuration first reports a broken runner.yaml before anything changes.
      const { config, stateDir, file } = runnerCommandConfig(ctx, cmd, flags);
      if (flags.show && flags.set.length === 0) {
        const settings = effectiveSettings(config);
        out.result({ stateDir, file, settings }, () =>
          [
            `# runner ${config.runner.name}: ${file}`,
            ...Object.entries(settings).map(([k, v]) => `${k}: ${displayValue(v)}`),
          ].join('\n'),
        );
        return;
      }
      const current = readRunnerSettings(file);
      let next: RunnerSettings;
      if (flags.set.length > 0) {
        next = { ...current };
        for (const assignment of flags.set) {
          const [key, value] = parseSetting(assignment);
          next[key] = value;
        }
        const changed = Object.fromEntries(flags.set.map((a) => parseSetting(a))) as RunnerSettings;
        const problems = settingsProblems(changed);
        if (problems.length > 0) {
          throw new RunfleetError(
            'InvalidArgument',
            problems.length === 1
              ? `--set ${problems[0]}`
              : ['invalid settings:', ...problems.map((p) => `  ${p}`)].join('\n'),
          );
        }
      } else {
        if (process.stdin.isTTY !== true) {
          throw new RunfleetError(
            'InvalidArgument',
            'runner configure: not a terminal, nothing to ask; pass --set key=value (or --show)',
          );
        }
        out.line(`runner ${config.runner.name}: ${file} (Enter keeps a value, - clears it)`);
        next = await promptSettings(current, { input: process.stdin, output: process.stdout });
      }
      writeRunnerSettings(file, next);
      out.result({ stateDir, file, updated: true }, () => `runner ${config.runner.name} configured: ${file}`);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
