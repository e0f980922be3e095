/* eslint-disable @typescript-eslint/no-require-imports -- the run's contract loads on use (require: tsx keeps import() as ESM) */
/**
 * `runfleet runner sessions NAME`: the task executions (sessions) running on a runner, from its
 * last heartbeat; `runfleet runner stop-session NAME RUN`: stops that run's work on the runner
 * (the run's stop: its tasks are killed where they run, its pending tasks cancelled).
 */
import type { Command } from 'commander';
import { RunfleetError } from '../../errors';
import type { RunnerAdmin } from '../../client/runners';
import { commandOutput, type CliContext } from '../context';
import { operator, withRunnerAdmin } from '../registry-context';

/** `<run workflow id>/<task>` as the runner reports it (task names hold no "/"). */
function splitKey(key: string): { run: string; task: string } {
  const at = key.lastIndexOf('/');
  return { run: key.slice(0, at), task: key.slice(at + 1) };
}

async function runningOn(admin: RunnerAdmin, name: string): Promise<{ run: string; task: string }[]> {
  const view = await admin.describe(name);
  if (!view.live) {
    throw new RunfleetError(
      'ComponentUnavailable',
      `runner ${name} holds no session (status ${view.record.status}): its running tasks are unknown`,
    );
  }
  return view.live.running.map(splitKey);
}

export function register(runner: Command, ctx: CliContext): void {
  runner
    .command('sessions')
    .description('list the tasks running on a runner (from its last heartbeat)')
    .argument('<name>', 'runner name')
    .option('--json', 'print JSON: [{run, task}]')
    .action(async (name: string, flags: { json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      await withRunnerAdmin(ctx, cmd, async (admin) => {
        const sessions = await runningOn(admin, name);
        out.result(sessions, () =>
          sessions.length === 0 ? `runner ${name} runs nothing` : sessions.map((s) => `${s.run}  ${s.task}`).join('\n'),
        );
      });
    });

  runner
    .command('stop-session')
    .description("stop a run's work on a runner (the run is stopped with the reason)")
    .argument('<name>', 'runner name')
    .argument('<run>', 'run id (run/<group>/<id>), as `runner sessions` lists it')
    .option('--reason <text>', 'why (recorded in the run)', 'stopped by an operator')
    .action(async (name: string, run: string, flags: { reason: string }, cmd: Command) => {
      const out = commandOutput();
      await withRunnerAdmin(ctx, cmd, async (admin) => {
        const sessions = await runningOn(admin, name);
        if (!sessions.some((s) => s.run === run)) {
          throw new RunfleetError(
            'NotFound',
            `runner ${name} runs nothing of ${run} (runfleet runner sessions ${name})`,
          );
        }
        // The run's contract loads on use: it brings the workflow library, which other commands need not pay for.
        const { stopRunSignal } =
          require('../../../workflows/run-messages') as typeof import('../../../workflows/run-messages');
        await admin.client.workflow
          .getHandle(run)
          .signal(stopRunSignal, { reason: `session stopped on runner ${name}: ${flags.reason}`, by: operator(ctx) });
        out.line(`stopping ${run} on runner ${name}`);
      });
    });
}
