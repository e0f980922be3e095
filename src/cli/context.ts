/* eslint-disable @typescript-eslint/no-require-imports -- heavy modules load on use (require: tsx keeps import() as ESM) */
/**
 * What every command gets: the environment, the working directory, the global flags turned
 * into one frozen Config, an Output, and a Runfleet client that is closed when the command ends.
 */
import type { Command } from 'commander';
import type { RunfleetClient } from '../client/client';
import { loadConfig, type Config, type ConfigFlags } from '../config';
import { packageRoot } from '../package-root';
import { startTracing } from '../tracing';
import { createOutput, type Output } from './output';

/** Flags every command takes (see main.ts). */
export interface GlobalFlags {
  config?: string;
  address?: string;
  namespace?: string;
  home?: string;
  logFormat?: string;
  logLevel?: string;
}

export interface CliContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** The Runfleet checkout (where `.tools/bin/temporal` is built). */
  readonly projectRoot: string;
  /** Set by a command that ends with a code other than 0 without an error (a failed run). */
  exitCode: number;
}

export function createContext(env: Readonly<Record<string, string | undefined>>, cwd: string): CliContext {
  return { env, cwd, projectRoot: packageRoot(__dirname), exitCode: 0 };
}

/**
 * The environment each command's Config was loaded from: connections read Temporal's standard
 * variables (TLS, API key) from it, so commands need not pass the environment along.
 */
const configEnv = new WeakMap<Config, Readonly<Record<string, string | undefined>>>();

/** The configuration for a command: defaults < file < environment < global and command flags. */
export function commandConfig(ctx: CliContext, cmd: Command, flags: ConfigFlags = {}): Config {
  const globals = cmd.optsWithGlobals<GlobalFlags>();
  const config = loadConfig({
    cwd: ctx.cwd,
    env: ctx.env,
    configFile: globals.config,
    flags: {
      address: globals.address,
      namespace: globals.namespace,
      home: globals.home,
      logFormat: globals.logFormat,
      logLevel: globals.logLevel,
      ...flags,
    },
  });
  configEnv.set(config, ctx.env);
  return config;
}

/** The environment `commandConfig` read `config` from (empty for a Config made elsewhere). */
export function commandEnv(config: Config): Readonly<Record<string, string | undefined>> {
  return configEnv.get(config) ?? {};
}

/** The output of a command; a foreground process passes its config's `log` (format of its log lines). */
export function commandOutput(opts: { json?: boolean; log?: Config['log'] } = {}): Output {
  return createOutput({ json: opts.json === true, ...(opts.log ? { logFormat: opts.log.format } : {}) });
}

/** Connects a client for the command, runs `fn`, and closes the connection. */
export async function withClient<T>(
  config: Config,
  fn: (client: RunfleetClient) => Promise<T>,
  env: Readonly<Record<string, string | undefined>> = commandEnv(config),
  /**
   * A watcher (`run watch`, `run logs --follow`) started while Temporal does not answer waits
   * for it, saying so, as it would ride out an outage once connected (`src/client/ride.ts`).
   */
  ride?: { onWait: (message: string) => void },
): Promise<T> {
  // Loaded here: the Temporal client costs half a second, which `schema` and `validate` need not pay.
  const { RunfleetClient } = require('../client/client') as typeof import('../client/client');
  const { createDataConverter, loadKeyRing } = require('../codec') as typeof import('../codec');
  const { connectionOptions } = require('../connection') as typeof import('../connection');
  // Off (and nothing loaded) unless `tracing.endpoint` is set: then `run submit` starts the trace.
  const tracing = config.tracing.endpoint === undefined ? null : startTracing(config, 'cli');
  const connect = () =>
    RunfleetClient.connect({
      ...connectionOptions(config, env),
      controlTaskQueue: config.temporal.controlTaskQueue,
      connectTimeoutMs: config.temporal.connectTimeoutMs,
      dataConverter: createDataConverter({ keys: loadKeyRing(config) }),
      ...(tracing ? { interceptors: tracing.clientInterceptors } : {}),
    });
  const { rideOut } = require('../client/ride') as typeof import('../client/ride');
  const client = ride ? await rideOut('Temporal', connect, { onWait: ride.onWait }) : await connect();
  try {
    return await fn(client);
  } finally {
    await client.close();
    await tracing?.shutdown();
  }
}

/** What `run list` needs: `RunfleetClient` (gRPC) and `HttpRunReader` both are one. */
export type RunLister = Pick<RunfleetClient, 'listRunsPage' | 'countRuns'>;

/**
 * A lister for `run list`: Temporal's HTTP API when `temporal.httpAddress` is set (no gRPC client
 * to load: a fraction of the start-up), else the gRPC client. The HTTP API takes the same TLS and
 * API key; it has no place for gRPC metadata (`TEMPORAL_GRPC_META_*`), so with metadata set the
 * command keeps to gRPC.
 */
export async function withRunLister<T>(
  config: Config,
  fn: (lister: RunLister) => Promise<T>,
  env: Readonly<Record<string, string | undefined>> = commandEnv(config),
): Promise<T> {
  const httpAddress = config.temporal.httpAddress;
  if (httpAddress === undefined) return withClient(config, fn, env);
  const { connectionOptions } = require('../connection') as typeof import('../connection');
  const connection = connectionOptions(config, env);
  if (connection.metadata !== undefined) return withClient(config, fn, env);
  const { TemporalHttpApi } = require('../client/http-api') as typeof import('../client/http-api');
  const { HttpRunReader } = require('../client/http-reader') as typeof import('../client/http-reader');
  return fn(
    new HttpRunReader(
      new TemporalHttpApi({ httpAddress, connection, connectTimeoutMs: config.temporal.connectTimeoutMs }),
    ),
  );
}

/** The exit code of a command that followed a run to its end: 0 only for success. */
export function runExitCode(result: string): number {
  return result === 'success' ? 0 : 1;
}
