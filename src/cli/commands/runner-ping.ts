/** `runfleet runner ping NAME`: asks the runner for its status and measures the round trip. */
import type { Command } from 'commander';
import { commandOutput, type CliContext } from '../context';
import { withRunnerAdmin } from '../registry-context';

export function register(runner: Command, ctx: CliContext): void {
  runner
    .command('ping')
    .description('ask a runner for its status (fails when it does not answer in 10s)')
    .argument('<name>', 'runner name')
    .option('--json', 'print JSON: {status, roundTripMs}')
    .action(async (name: string, flags: { json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      await withRunnerAdmin(ctx, cmd, async (admin) => {
        const reply = await admin.ping(name);
        const s = reply.status;
        out.result(
          reply,
          () =>
            `runner ${name} answered in ${reply.roundTripMs} ms: ${s.free}/${s.slots} slots free, ${s.running.length} running, version ${s.version}`,
        );
      });
    });
}
