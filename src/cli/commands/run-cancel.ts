/**
 * `runfleet run cancel ID [--task NAME] [--reason R] [--by NAME]` (alias `stop`): stops a run with a
 * reason, or cancels one of its tasks (`--task`).
 */
import type { Command } from 'commander';
import { resolveRunWorkflowId } from '../../client/ids';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';

interface Flags {
  task?: string;
  reason?: string;
  by?: string;
  json?: boolean;
}

export function register(run: Command, ctx: CliContext): void {
  run
    .command('cancel')
    .alias('stop')
    .description('stop a run: started tasks are killed on their runners, the others never start')
    .argument('<id>', 'run id')
    .option('--task <name>', 'cancel only this task (its dependents follow their conditions, as for a skip)')
    .option('--reason <text>', 'why (kept in the run state)', 'cancelled by request')
    .option('--by <name>', 'who stops it (default: $USER)')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: Flags, cmd: Command) => {
      const out = commandOutput(flags);
      const by = flags.by ?? ctx.env['USER'] ?? ctx.env['USERNAME'] ?? 'unknown';
      await withClient(commandConfig(ctx, cmd), async (client) => {
        if (flags.task !== undefined) {
          const task = flags.task;
          const state = await client.cancelTask(id, task, { reason: flags.reason, by });
          const t = state.tasks[task];
          out.result(
            { id: state.id, task, status: t?.status ?? null, reason: t?.reason ?? null, by },
            () => `task ${task} of ${state.id}: ${t?.status ?? 'unknown'}${t?.reason ? ` (${t.reason})` : ''}`,
          );
          return;
        }
        await client.cancelRun(id, { reason: flags.reason, by });
        const workflowId = resolveRunWorkflowId(id);
        out.result(
          { id: workflowId, stopRequested: true, reason: flags.reason, by },
          () => `stop requested for ${workflowId} (${flags.reason}, by ${by})`,
        );
      });
    });
}
