/* eslint-disable @typescript-eslint/no-require-imports -- heavy modules load on use (require: tsx keeps import() as ESM) */
/**
 * `runfleet codec-server`: decodes (and encodes) payloads with the key file's data keys for the
 * Web UI and `temporal ... --codec-endpoint`, in the foreground.
 */
import type { Command } from 'commander';
import { port } from '../args';
import { RunfleetError } from '../../errors';
import { commandConfig, commandOutput, type CliContext } from '../context';
import { Lifecycle } from '../lifecycle';

interface Flags {
  port: number;
  host: string;
  origin: string[];
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('codec-server')
    .description("serve Temporal's remote codec protocol with the data keys, for the Web UI and the temporal CLI")
    .option('--port <port>', 'port (0: any free one)', (v) => (v === '0' ? 0 : port(v)), 8888)
    .option('--host <host>', 'address to listen on (anyone who reaches it can decode)', '127.0.0.1')
    .option(
      '--origin <url>',
      'Web UI origin allowed to call it (repeatable; default http://localhost:8233)',
      (v: string, prev: string[]) => [...prev, v],
      [],
    )
    .action(async (flags: Flags, cmd: Command) => {
      const config = commandConfig(ctx, cmd);
      const out = commandOutput();
      const { CompressionCodec, EncryptionCodec, loadKeyRing } = require('../../codec') as typeof import('../../codec');
      const { startCodecServer } = require('../../codec/server') as typeof import('../../codec/server');
      const keys = loadKeyRing(config);
      if (!keys.current())
        throw new RunfleetError(
          'InvalidConfig',
          `no data keys at ${config.encryption.keyFile}: nothing to decode with (run \`runfleet keys create\`, or set encryption.keyFile)`,
        );
      const lifecycle = new Lifecycle(out);
      lifecycle.trapSignals();
      try {
        const server = await startCodecServer({
          codecs: [new CompressionCodec(), new EncryptionCodec(keys)],
          port: flags.port,
          host: flags.host,
          origins: flags.origin.length ? flags.origin : undefined,
          onError: (err) => out.log(`codec-server: ${err instanceof Error ? err.message : String(err)}`),
        });
        lifecycle.add('codec server', () => server.close());
        out.log(
          `codec server at ${server.url} with keys ${keys.ids().join(', ')} (${config.encryption.keyFile}); ` +
            `temporal workflow show --codec-endpoint ${server.url} ...`,
        );
        await lifecycle.stopped();
      } finally {
        await lifecycle.releaseAll();
      }
    });
}
