/* eslint-disable @typescript-eslint/no-require-imports -- heavy modules load on use (require: tsx keeps import() as ESM) */
/**
 * `runfleet codec-server`: decodes payloads with the key file's data keys for the Web UI and
 * `temporal ... --codec-endpoint`, in the foreground, for callers with a token (see
 * src/codec/server.ts for every check a request passes).
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { integer, port } from '../args';
import { RunfleetError } from '../../errors';
import {
  checkTokens,
  createAuthenticator,
  readJwksFile,
  readTokenFile,
  type CodecAuthOptions,
} from '../../codec/server-auth';
import { commandConfig, commandOutput, type CliContext } from '../context';
import { Lifecycle } from '../lifecycle';

export interface CodecServerFlags {
  port: number;
  host: string;
  origin: string[];
  allowedHost: string[];
  tokenFile?: string;
  jwks?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  allowEncode?: boolean;
  unauthenticated?: boolean;
  maxBodyBytes?: number;
}

const repeatable = (v: string, prev: string[]) => [...prev, v];

export function register(program: Command, ctx: CliContext): void {
  program
    .command('codec-server')
    .description("serve Temporal's remote codec protocol with the data keys, for the Web UI and the temporal CLI")
    .option('--port <port>', 'port (0: any free one)', (v) => (v === '0' ? 0 : port(v)), 8888)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option(
      '--token-file <file>',
      'file with the bearer token(s) callers must send, one a line (or RUNFLEET_CODEC_TOKEN_FILE / RUNFLEET_CODEC_TOKEN)',
    )
    .option('--jwks <file>', "JWKS of the Web UI's identity provider: accept its users' forwarded access tokens")
    .option('--jwt-issuer <iss>', 'the issuer an access token must carry (with --jwks)')
    .option('--jwt-audience <aud>', 'the audience an access token must carry (with --jwks)')
    .option(
      '--allowed-host <name>',
      'host name requests may be addressed to (repeatable; default loopback names)',
      repeatable,
      [],
    )
    .option(
      '--origin <url>',
      'Web UI origin allowed to call it from a browser (repeatable; default none)',
      repeatable,
      [],
    )
    .option('--allow-encode', 'serve /encode too (callers could then make payloads workers accept)')
    .option('--max-body-bytes <n>', 'largest request body (default 8 MiB)', integer(1024, 1024 * 1024 * 1024))
    .option('--unauthenticated', 'no token asked: only on a loopback --host (anyone on this machine can decode)')
    .action(async (flags: CodecServerFlags, cmd: Command) => {
      const config = commandConfig(ctx, cmd);
      const out = commandOutput();
      const { CompressionCodec, EncryptionCodec, loadKeyRing } = require('../../codec') as typeof import('../../codec');
      const { isLoopback, startCodecServer } = require('../../codec/server') as typeof import('../../codec/server');
      const auth = codecAuth(flags, ctx.env, ctx.cwd);
      if (auth === null && !isLoopback(flags.host))
        throw new RunfleetError(
          'InvalidArgument',
          `--unauthenticated serves only on a loopback --host, not ${flags.host}: anyone who reaches it could decode`,
        );
      const keys = loadKeyRing(config);
      if (!keys.current())
        throw new RunfleetError(
          'InvalidConfig',
          `no data keys at ${config.encryption.keyFile}: nothing to decode with (run \`runfleet keys create\`, or set encryption.keyFile)`,
        );
      const tokenFile = auth?.tokenFile;
      if (tokenFile && (statSync(tokenFile).mode & 0o077) !== 0)
        out.log(`codec-server: warning: ${tokenFile} is readable by other users (chmod 600 it)`);
      const lifecycle = new Lifecycle(out);
      lifecycle.trapSignals();
      try {
        const server = await startCodecServer({
          codecs: [new CompressionCodec(), new EncryptionCodec(keys)],
          auth: auth ? createAuthenticator(auth.options) : null,
          port: flags.port,
          host: flags.host,
          allowedHosts: flags.allowedHost.length ? flags.allowedHost : undefined,
          origins: flags.origin,
          allowEncode: flags.allowEncode === true,
          maxBodyBytes: flags.maxBodyBytes,
          onError: (err) => out.log(`codec-server: ${err instanceof Error ? err.message : String(err)}`),
          onRefused: (status, why, req) =>
            out.log(
              `codec-server: refused ${req.method} ${req.url} from ${req.socket.remoteAddress}: ${status} ${why}`,
            ),
        });
        lifecycle.add('codec server', () => server.close());
        out.log(
          `codec server at ${server.url} with keys ${keys.ids().join(', ')} (${config.encryption.keyFile}); ` +
            `${auth ? `callers authenticate with ${auth.described}` : 'NO authentication (--unauthenticated)'}; ` +
            `TEMPORAL_CODEC_AUTH="Bearer $(cat TOKEN_FILE)" temporal workflow show --codec-endpoint ${server.url} ...`,
        );
        await lifecycle.stopped();
      } finally {
        await lifecycle.releaseAll();
      }
    });
}

/**
 * Who may call the server, from the flags and the environment: a token (a file, never a flag
 * value that `ps` shows), Web UI access tokens, or both; `null` with `--unauthenticated`.
 */
export function codecAuth(
  flags: Pick<CodecServerFlags, 'tokenFile' | 'jwks' | 'jwtIssuer' | 'jwtAudience' | 'unauthenticated'>,
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): { options: CodecAuthOptions; described: string; tokenFile?: string } | null {
  const options: CodecAuthOptions = {};
  const described: string[] = [];
  let tokenFile: string | undefined;
  const fileFrom = flags.tokenFile
    ? '--token-file'
    : env['RUNFLEET_CODEC_TOKEN_FILE']
      ? 'RUNFLEET_CODEC_TOKEN_FILE'
      : null;
  if (fileFrom) {
    tokenFile = resolve(cwd, (flags.tokenFile ?? env['RUNFLEET_CODEC_TOKEN_FILE']) as string);
    options.tokens = readTokenFile(tokenFile, fileFrom);
    described.push(`the token in ${tokenFile}`);
  } else if (env['RUNFLEET_CODEC_TOKEN']) {
    options.tokens = checkTokens([env['RUNFLEET_CODEC_TOKEN']], 'RUNFLEET_CODEC_TOKEN');
    described.push('the token in RUNFLEET_CODEC_TOKEN');
  }
  if (flags.jwks || flags.jwtIssuer || flags.jwtAudience) {
    if (!flags.jwks || !flags.jwtIssuer || !flags.jwtAudience)
      throw new RunfleetError('InvalidArgument', '--jwks, --jwt-issuer and --jwt-audience go together');
    options.jwt = {
      keys: readJwksFile(resolve(cwd, flags.jwks)),
      issuer: flags.jwtIssuer,
      audience: flags.jwtAudience,
    };
    described.push(`access tokens of ${flags.jwtIssuer} for ${flags.jwtAudience}`);
  }
  if (flags.unauthenticated) {
    if (described.length > 0)
      throw new RunfleetError('InvalidArgument', '--unauthenticated and a token (or --jwks) contradict each other');
    return null;
  }
  if (described.length === 0)
    throw new RunfleetError(
      'InvalidArgument',
      'the codec server needs a token: --token-file FILE (or RUNFLEET_CODEC_TOKEN_FILE, RUNFLEET_CODEC_TOKEN), ' +
        'and/or --jwks FILE --jwt-issuer ISS --jwt-audience AUD for the Web UI; --unauthenticated on loopback for a dev machine',
    );
  return { options, described: described.join(' or '), ...(tokenFile ? { tokenFile } : {}) };
}
