/* eslint-disable @typescript-eslint/no-require-imports -- heavy modules load on use (require: tsx keeps import() as ESM) */
/** `runfleet server start-dev`: a Temporal dev server (SQLite file) in the foreground. */
import { join } from 'node:path';
import type { Command } from 'commander';
import { port } from '../args';
import { devServerHttpPort } from '../../config';
import { commandConfig, commandOutput, type CliContext } from '../context';
import { Lifecycle } from '../lifecycle';
import { webUiWorkflowsUrl } from '../render';

interface Flags {
  port?: number;
  uiPort?: number;
  httpPort?: number;
  dbFile?: string;
  headless?: boolean;
}

export function register(server: Command, ctx: CliContext): void {
  server
    .command('start-dev')
    .description('run a Temporal dev server with Runfleet search attributes, in the foreground')
    .option('--port <port>', 'gRPC port (default: 7233)', port)
    .option('--ui-port <port>', 'Web UI port (default: 8233)', port)
    .option('--http-port <port>', 'HTTP API port (default: the gRPC port + 10, 7243)', port)
    .option('--db-file <file>', 'SQLite file (default: <data-dir>/temporal.db)')
    .option('--headless', 'no Web UI')
    .action(async (flags: Flags, cmd: Command) => {
      const config = commandConfig(ctx, cmd, { port: flags.port, uiPort: flags.uiPort, httpPort: flags.httpPort });
      const out = commandOutput({ log: config.log });
      // Loaded on use, like every heavy dependency of a command.
      const { startDevServer } = require('../../server/dev-server') as typeof import('../../server/dev-server');
      const { ensureTemporalBinary } =
        require('../../server/temporal-binary') as typeof import('../../server/temporal-binary');
      const lifecycle = new Lifecycle(out);
      lifecycle.trapSignals();
      try {
        const binary = await ensureTemporalBinary({
          projectRoot: ctx.projectRoot,
          log: (l) => out.log(l),
          env: { ...ctx.env },
        });
        const dev = await startDevServer({
          binary,
          dbFile: flags.dbFile ?? join(config.dataDir, 'temporal.db'),
          port: config.server.port,
          uiPort: config.server.uiPort,
          httpPort: devServerHttpPort(config.server),
          headless: flags.headless === true,
          namespace: config.temporal.namespace,
          log: (l) => out.log(l),
          logFile: join(config.dataDir, 'temporal.log'),
        });
        lifecycle.add('Temporal dev server', () => dev.stop());
        out.line(`Temporal at ${dev.address} (TEMPORAL_ADDRESS=${dev.address}), namespace ${dev.namespace}`);
        out.line(`HTTP API at ${dev.httpAddress} (RUNFLEET_HTTP_ADDRESS=${dev.httpAddress}: a faster run list)`);
        if (dev.uiUrl) out.line(`Web UI: ${webUiWorkflowsUrl(dev.uiUrl, dev.namespace)}`);
        const exited = new Promise<void>((resolve) => dev.process.once('exit', () => resolve()));
        await Promise.race([lifecycle.stopped(), exited]);
        if (!lifecycle.stopSignal.aborted)
          out.error('runfleet: the Temporal dev server exited; see ' + join(config.dataDir, 'temporal.log'));
      } finally {
        await lifecycle.releaseAll();
      }
    });
}
