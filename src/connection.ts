/**
 * How every Runfleet client and worker connects to Temporal: the address and namespace from
 * Runfleet's configuration (flags, TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, the config file named by
 * `--config` / RUNFLEET_CONFIG or the user's own; never a file of the working directory, which
 * could send the API key below to another server), and TLS, the API key and gRPC metadata from
 * Temporal's standard client configuration, the same the `temporal` CLI and every SDK read:
 *
 * - `TEMPORAL_TLS`, `TEMPORAL_TLS_CLIENT_CERT_PATH|DATA`, `TEMPORAL_TLS_CLIENT_KEY_PATH|DATA`,
 *   `TEMPORAL_TLS_SERVER_CA_CERT_PATH|DATA`, `TEMPORAL_TLS_SERVER_NAME`, `TEMPORAL_API_KEY`,
 *   `TEMPORAL_GRPC_META_<NAME>`;
 * - the TOML file `TEMPORAL_CONFIG_FILE` (default `~/.config/temporalio/temporal.toml`), profile
 *   `TEMPORAL_PROFILE` (default `default`); variables override the file.
 *
 * An API key without any TLS setting turns TLS on (`TEMPORAL_TLS=false` turns it off), as in the SDK.
 * The environment is passed in: nothing here reads `process.env`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadClientConfigProfile, type ClientConfigProfile, type ConfigDataSource } from '@temporalio/envconfig';
import type { Config } from './config';
import { RunfleetError } from './errors';

/** TLS settings both `Connection.connect` and `NativeConnection.connect` take. */
export interface TlsOptions {
  serverNameOverride?: string;
  serverRootCACertificate?: Buffer;
  clientCertPair?: { crt: Buffer; key: Buffer };
}

/**
 * Options for both `Connection.connect` (client) and `NativeConnection.connect` (workers): the
 * plain-string `apiKey` and string-valued `metadata` are the subset the two share.
 */
export interface TemporalConnectionOptions {
  address: string;
  namespace: string;
  /**
   * Absent: plain TCP, unless there is an API key (the SDKs then turn TLS on). `false`: plain TCP
   * even with an API key (`TEMPORAL_TLS=false`). `true`: TLS with the system's roots.
   */
  tls?: TlsOptions | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
}

type Env = Readonly<Record<string, string | undefined>>;

const DATA_SOURCES = [
  ['clientCert', 'TEMPORAL_TLS_CLIENT_CERT', 'client_cert'],
  ['clientKey', 'TEMPORAL_TLS_CLIENT_KEY', 'client_key'],
  ['serverCACert', 'TEMPORAL_TLS_SERVER_CA_CERT', 'server_ca_cert'],
] as const;

export function connectionOptions(config: Pick<Config, 'temporal'>, env: Env): TemporalConnectionOptions {
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) vars[k] = v;

  const configFile = vars['TEMPORAL_CONFIG_FILE'];
  // The SDK treats a missing file as no file; one named explicitly must exist.
  if (configFile && !existsSync(configFile))
    throw new RunfleetError('InvalidConfig', `TEMPORAL_CONFIG_FILE: ${configFile} does not exist`);
  const where = configFile
    ? `TEMPORAL_CONFIG_FILE ${configFile}`
    : (defaultConfigFile(vars) ?? 'the Temporal config file');

  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({ overrideEnvVars: vars });
  } catch (err) {
    const message = (err as Error).message.split('\n')[0] ?? '';
    if (/^Profile '.*' not found/.test(message))
      throw new RunfleetError(
        'InvalidConfig',
        `TEMPORAL_PROFILE: ${message.replace(/^Profile/, 'profile')} (${where})`,
      );
    throw new RunfleetError('InvalidConfig', `${where}: ${message}`);
  }

  const out: TemporalConnectionOptions = {
    address: config.temporal.address,
    namespace: config.temporal.namespace,
  };
  const tls = profile.tls;
  if (tls && tls.disabled !== true) {
    const data: Partial<Record<'clientCert' | 'clientKey' | 'serverCACert', Buffer>> = {};
    for (const [field, variable, tomlKey] of DATA_SOURCES) {
      const source = tls[field];
      if (source) data[field] = readSource(source, vars, variable, `${where}: tls.${tomlKey}_path`);
    }
    if (Boolean(data.clientCert) !== Boolean(data.clientKey)) {
      throw new RunfleetError(
        'InvalidConfig',
        `TLS: a client certificate needs its key and a key its certificate (TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH, or tls.client_cert_path and tls.client_key_path)`,
      );
    }
    out.tls = {
      ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
      ...(data.serverCACert ? { serverRootCACertificate: data.serverCACert } : {}),
      ...(data.clientCert && data.clientKey ? { clientCertPair: { crt: data.clientCert, key: data.clientKey } } : {}),
    };
  } else if (tls?.disabled === true) {
    out.tls = false;
  } else if (profile.apiKey !== undefined) {
    out.tls = true;
  }
  if (profile.apiKey !== undefined) out.apiKey = profile.apiKey;
  if (profile.grpcMeta && Object.keys(profile.grpcMeta).length > 0) out.metadata = { ...profile.grpcMeta };
  return out;
}

/** Where the server is and how, for log lines: `host:port (TLS, API key)`. */
export function describeConnection(opts: TemporalConnectionOptions): string {
  const how = [opts.tls ? (typeof opts.tls === 'object' && opts.tls.clientCertPair ? 'mTLS' : 'TLS') : null];
  if (opts.apiKey) how.push('API key');
  const shown = how.filter(Boolean);
  return shown.length ? `${opts.address} (${shown.join(', ')})` : opts.address;
}

function readSource(
  source: ConfigDataSource,
  vars: Record<string, string>,
  variable: string,
  tomlWhere: string,
): Buffer {
  if ('data' in source) return Buffer.from(source.data);
  // A variable overrides the file: name it when it is the one that gave this path.
  const from = vars[`${variable}_PATH`] === source.path ? `${variable}_PATH` : tomlWhere;
  try {
    return readFileSync(source.path);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (err as Error).message;
    throw new RunfleetError('InvalidConfig', `${from}: ${source.path} ${why}`);
  }
}

/** The SDK's default file on Linux and macOS (where the error names it). */
function defaultConfigFile(vars: Record<string, string>): string | undefined {
  const home = vars['HOME'];
  const base =
    process.platform === 'darwin'
      ? home && join(home, 'Library', 'Application Support')
      : (vars['XDG_CONFIG_HOME'] ?? (home && join(home, '.config')));
  return base ? join(base, 'temporalio', 'temporal.toml') : undefined;
}
