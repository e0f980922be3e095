/* eslint-disable @typescript-eslint/no-require-imports -- heavy modules load on use (require: tsx keeps import() as ESM) */
/**
 * `runfleet runner schedule set|rm|list`: runs started on a cron schedule and pinned to one
 * runner, kept as Temporal Schedules (`runner/<runner>/<id>`).
 */
import type { Command } from 'commander';
import { RunfleetError } from '../../errors';
import { checkTimezone, parseCron } from '../../runner/cron';
import type { RunnerScheduleInfo } from '../../runner/schedules';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';

interface SetFlags {
  cron: string;
  file: string;
  timezone?: string;
  paused?: boolean;
  json?: boolean;
}

export function register(runner: Command, ctx: CliContext): void {
  const schedule = runner.command('schedule').description('runs on a cron schedule, pinned to one runner');

  schedule
    .command('set')
    .description('create or update a schedule')
    .argument('<runner>', 'runner name')
    .argument('<id>', 'schedule id, unique per runner')
    .requiredOption('--cron <expr>', 'five fields: minute hour day-of-month month day-of-week (or @daily, ...)')
    .requiredOption('--file <run.yaml>', 'run file (YAML or JSON), validated as `run submit` does')
    .option('--timezone <tz>', 'IANA time zone of the cron expression (default: UTC)')
    .option('--paused', 'create it paused (or pause it)')
    .option('--json', 'print JSON')
    .action(async (runnerName: string, id: string, flags: SetFlags, cmd: Command) => {
      const out = commandOutput(flags);
      // Everything is checked before connecting: nothing is created when anything is wrong.
      const { loadRunSpecFile } = require('../../spec/load') as typeof import('../../spec/load');
      const loaded = await loadRunSpecFile(flags.file);
      parseCron(flags.cron);
      if (flags.timezone !== undefined) checkTimezone(flags.timezone);
      const { checkRunnerSchedule, setRunnerSchedule } =
        require('../../runner/schedules') as typeof import('../../runner/schedules');
      const config = commandConfig(ctx, cmd);
      const input = {
        runner: runnerName,
        id,
        cron: flags.cron,
        timezone: flags.timezone,
        paused: flags.paused === true,
        spec: loaded.input,
        file: loaded.file,
        controlTaskQueue: config.temporal.controlTaskQueue,
      };
      checkRunnerSchedule(input);
      await withClient(config, async (rf) => {
        const result = await wrap(rf, () => setRunnerSchedule(rf.client, input));
        out.result(result, () => `schedule ${result.scheduleId} ${result.created ? 'created' : 'updated'}`);
      });
    });

  schedule
    .command('rm')
    .description('delete a schedule (runs it started are not touched)')
    .argument('<runner>', 'runner name')
    .argument('<id>', 'schedule id')
    .action(async (runnerName: string, id: string, _flags: unknown, cmd: Command) => {
      const out = commandOutput();
      const { removeRunnerSchedule } = require('../../runner/schedules') as typeof import('../../runner/schedules');
      const config = commandConfig(ctx, cmd);
      await withClient(config, async (rf) => {
        const removed = await wrap(rf, () => removeRunnerSchedule(rf.client, runnerName, id));
        if (!removed) throw new RunfleetError('NotFound', `runner ${runnerName} has no schedule ${id}`);
        out.line(`schedule runner/${runnerName}/${id} removed`);
      });
    });

  schedule
    .command('list')
    .description("a runner's schedules: cron, next fire times, last run, paused")
    .argument('<runner>', 'runner name')
    .option('--json', 'print JSON')
    .action(async (runnerName: string, flags: { json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      const { listRunnerSchedules } = require('../../runner/schedules') as typeof import('../../runner/schedules');
      const config = commandConfig(ctx, cmd);
      await withClient(config, async (rf) => {
        const schedules = await wrap(rf, () => listRunnerSchedules(rf.client, runnerName));
        out.result({ runner: runnerName, schedules }, () => renderSchedules(runnerName, schedules));
      });
    });
}

function renderSchedules(runner: string, schedules: RunnerScheduleInfo[]): string {
  if (schedules.length === 0) return `runner ${runner} has no schedules`;
  const lines: string[] = [];
  for (const s of schedules) {
    lines.push(
      `${s.id}  ${s.cron ?? '?'} (${s.timezone})${s.paused ? '  PAUSED' + (s.note ? `: ${s.note}` : '') : ''}  run ${s.runName ?? '?'} in ${s.group ?? '?'}`,
    );
    lines.push(`  next: ${s.nextRunTimes.length > 0 ? s.nextRunTimes.join(', ') : '-'}`);
    lines.push(`  last: ${s.lastAction ? `${s.lastAction.takenAt} ${s.lastAction.workflowId}` : '-'}`);
  }
  return lines.join('\n');
}

async function wrap<T>(rf: { address: string; namespace: string }, fn: () => Promise<T>): Promise<T> {
  const { toRunfleetError } = require('../../client/errors') as typeof import('../../client/errors');
  try {
    return await fn();
  } catch (err) {
    throw toRunfleetError(err, { address: rf.address, namespace: rf.namespace });
  }
}
