/**
 * `runfleet run logs ID TASK`: a task attempt's log, from the runner that ran it while it runs,
 * from the object store once it has ended or its runner is gone.
 */
import type { Command } from 'commander';
import { rideOut } from '../../client/ride';
import { sleep } from '../../sleep';
import { FINAL_TASK_STATUSES } from '../../types';
import { integer } from '../args';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';

/** How often `--follow` asks again when nothing new came: a tail, not a busy loop. */
const FOLLOW_INTERVAL_MS = 1_000;

export function register(run: Command, ctx: CliContext): void {
  run
    .command('logs')
    .description("print a task's log (from its runner, or the object store once the runner is gone)")
    .argument('<id>', 'run id')
    .argument('<task>', 'task name')
    .option('-f, --follow', 'keep printing until the task has ended and its log is complete')
    .option('--attempt <n>', 'the attempt whose log to print (default: the latest)', integer(1, 1000))
    .action(async (id: string, task: string, flags: { follow?: boolean; attempt?: number }, cmd: Command) => {
      const out = commandOutput();
      // Following: a Temporal that does not answer yet is waited for; a single read fails at once.
      const ride = flags.follow ? { onWait: (message: string) => out.error(message) } : undefined;
      await withClient(
        commandConfig(ctx, cmd),
        async (client) => {
          let offset = 0;
          let announced = false;
          for (;;) {
            // Following rides out a service that stops answering for a while; a single read fails at once.
            const read = () => client.readTaskLog(id, task, offset, undefined, flags.attempt);
            const chunk = flags.follow
              ? await rideOut(`the log of task ${task}`, read, { onWait: (message) => out.error(message) })
              : await read();
            if (chunk.data.length > 0) out.write(chunk.data);
            const advanced = chunk.nextOffset > offset;
            offset = chunk.nextOffset;
            // Its runner is gone and never finished shipping it: what the store has is all there is.
            if (chunk.partial && chunk.complete) {
              out.error(`task ${task} is ${chunk.taskStatus}: ${chunk.partial}`);
              return;
            }
            if (advanced) continue; // more may be there already
            const final = FINAL_TASK_STATUSES.includes(chunk.taskStatus);
            if (!flags.follow) {
              if (!chunk.exists && offset === 0) out.error(`no log for task ${task} (it is ${chunk.taskStatus})`);
              return;
            }
            if (final && (chunk.complete || !chunk.exists)) {
              if (!chunk.exists && offset === 0) out.error(`no log for task ${task} (it is ${chunk.taskStatus})`);
              return;
            }
            if (!chunk.exists && !announced) {
              out.error(`waiting for task ${task} to start (it is ${chunk.taskStatus})`);
              announced = true;
            }
            await sleep(FOLLOW_INTERVAL_MS);
          }
        },
        undefined,
        ride,
      );
    });
}
