/* eslint-disable @typescript-eslint/no-require-imports -- heavy modules load on use (require: tsx keeps import() as ESM) */
/** `runfleet runner serve`: a runner in the foreground (reserves work from a pool, runs it). */
import type { Command } from 'commander';
import { integer } from '../args';
import { commandConfig, commandOutput, type CliContext } from '../context';
import { Lifecycle } from '../lifecycle';

interface Flags {
  pool?: string;
  name?: string;
  slots?: number;
  dataDir?: string;
  healthPort?: number;
}

export function register(runner: Command, ctx: CliContext): void {
  runner
    .command('serve')
    .description('run a runner in the foreground')
    .option('--pool <pool>', 'pool to take work from (default: default)')
    .option('--name <name>', 'runner name, unique in the fleet (default: local)')
    .option('--slots <n>', 'tasks run at once (default: 4)', integer(1, 256))
    .option('--data-dir <dir>', 'workspaces and logs (default: <home>/runners/<name>)')
    .option('--health-port <port>', 'serve /livez and /readyz on this port (0: any free port)', integer(0, 65535))
    .action(async (flags: Flags, cmd: Command) => {
      const config = commandConfig(ctx, cmd, { pool: flags.pool, runnerName: flags.name, slots: flags.slots });
      const out = commandOutput();
      // Loaded on use: the worker runtime is heavy, and most commands never need it.
      const { DEFAULT_PASS_ENV, createRunner, defaultRunnerDataDir } =
        require('../../../workers/runner') as typeof import('../../../workers/runner');
      const { connectWorker, describeTemporal, installRuntime, passEnv } =
        require('../runtime') as typeof import('../runtime');
      const dataDir = flags.dataDir ?? defaultRunnerDataDir(config.home, config.runner.name);
      installRuntime(out, 'INFO');
      const lifecycle = new Lifecycle(out);
      lifecycle.trapSignals();
      let runner: { readiness(): { ready: boolean; reason: string } } | null = null;
      try {
        if (flags.healthPort !== undefined) {
          const { startHealthServer } = require('../../runner/health') as typeof import('../../runner/health');
          // Live from now on; ready once the runner serves.
          const health = await startHealthServer({
            host: ctx.env['RUNFLEET_HEALTH_HOST'] ?? '127.0.0.1',
            port: flags.healthPort,
            readiness: () => runner?.readiness() ?? { ready: false, reason: 'connecting to Temporal' },
          });
          lifecycle.add('health endpoints', () => health.close());
          out.log(`health: http://127.0.0.1:${health.port}/livez and /readyz`);
        }
        const connection = await connectWorker(config.temporal.address);
        lifecycle.add('connection', () => connection.close());
        const r = await createRunner({
          connection,
          namespace: config.temporal.namespace,
          name: config.runner.name,
          pool: config.runner.pool,
          slots: config.runner.slots,
          dataDir,
          evictionMs: config.runner.evictionMs,
          logRetentionMs: config.runner.logRetentionDays * 86_400_000,
          passEnv: passEnv(ctx.env, DEFAULT_PASS_ENV),
        });
        const running = r.run();
        runner = r;
        lifecycle.add(`runner ${config.runner.name}`, async () => {
          r.shutdown();
          await running;
        });
        out.log(
          `runner ${config.runner.name} serving pool ${config.runner.pool} with ${config.runner.slots} slots at ${describeTemporal(config)} (data in ${dataDir})`,
        );
        await Promise.race([lifecycle.stopped(), running]);
      } finally {
        await lifecycle.releaseAll();
      }
    });
}
