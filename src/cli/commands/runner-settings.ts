/** `runfleet runner settings NAME [--set key=value]...`: shows or changes what the fleet tells a runner. */
import type { Command } from 'commander';
import { RunfleetError } from '../../errors';
import { formatDuration, parseDuration } from '../../duration';
import type { RunnerSettings } from '../../../workflows/runner-messages';
import { commandOutput, type CliContext } from '../context';
import { collect, operator, withRunnerAdmin } from '../registry-context';

const KEYS = ['slots', 'evictionMs', 'heartbeatMs', 'pingMs', 'watchdogMs'] as const;

export function register(runner: Command, ctx: CliContext): void {
  runner
    .command('settings')
    .description(`show or change a runner's settings (${KEYS.join(', ')}); the runner gets them at once`)
    .argument('<name>', 'runner name')
    .option('--set <key=value>', 'a setting (repeat for more); durations as 30s or 30000', collect, [])
    .option('--reason <text>', 'why (recorded in the runner history)')
    .option('--json', 'print JSON: the settings')
    .action(async (name: string, flags: { set: string[]; reason?: string; json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      const patch = parseSet(flags.set);
      await withRunnerAdmin(ctx, cmd, async (admin) => {
        const record =
          Object.keys(patch).length === 0
            ? await admin.get(name)
            : await admin.settings(name, patch, { by: operator(ctx), reason: flags.reason });
        const s = record.settings;
        out.result(s, () =>
          KEYS.map((k) => `${k.padEnd(12)} ${k === 'slots' ? s[k] : `${s[k]} (${formatDuration(s[k])})`}`).join('\n'),
        );
      });
    });
}

function parseSet(pairs: string[]): Partial<RunnerSettings> {
  const patch: Record<string, number> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq) : '';
    const raw = pair.slice(eq + 1).trim();
    if (!(KEYS as readonly string[]).includes(key))
      throw new RunfleetError(
        'InvalidArgument',
        `--set "${pair}": expected key=value with key one of ${KEYS.join(', ')}`,
      );
    const value = /^\d+$/.test(raw) ? Number(raw) : key === 'slots' ? null : parseDuration(raw);
    if (value === null)
      throw new RunfleetError(
        'InvalidArgument',
        `--set ${key}: "${raw}" is not ${key === 'slots' ? 'a whole number' : 'a duration (30s) or milliseconds'}`,
      );
    patch[key] = value;
  }
  return patch;
}
