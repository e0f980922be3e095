/** `runfleet run logs ID TASK`: a task's log, read from the runner that ran it. */
import type { Command } from 'commander';
import { rideOut } from '../../client/ride';
import { sleep } from '../../sleep';
import { FINAL_TASK_STATUSES } from '../../types';
import { commandConfig, commandOutput, withClient, type CliContext } from '../context';

/** How often `--follow` asks again when nothing new came: a tail, not a busy loop. */
const FOLLOW_INTERVAL_MS = 1_000;

export function register(run: Command, ctx: CliContext): void {
  run
    .command('logs')
    .description("print a task's log (from the runner that ran it)")
    .argument('<id>', 'run id')
    .argument('<task>', 'task name')
    .option('-f, --follow', 'keep printing until the task has ended and its log is complete')
    .action(async (id: string, task: string, flags: { follow?: boolean }, cmd: Command) => {
      const out = commandOutput();
      await withClient(commandConfig(ctx, cmd), async (client) => {
        let offset = 0;
        let announced = false;
        for (;;) {
          // Following rides out a service that stops answering for a while; a single read fails at once.
          const read = () => client.readTaskLog(id, task, offset);
          const chunk = flags.follow
            ? await rideOut(`the log of task ${task}`, read, { onWait: (message) => out.error(message) })
            : await read();
          if (chunk.data.length > 0) out.write(chunk.data);
          const advanced = chunk.nextOffset > offset;
          offset = chunk.nextOffset;
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
      });
    });
}
