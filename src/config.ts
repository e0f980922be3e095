/**
 * Runfleet's configuration, parsed once at the process edge and passed down frozen.
 *
 * Layers, lowest first: defaults < config file (`--config FILE`, else `RUNFLEET_CONFIG`, else the
 * user's `$XDG_CONFIG_HOME/runfleet/config.yaml`, default `~/.config/runfleet/config.yaml`) <
 * the runner's own file (`<state dir>/runner.yaml`, runner commands only) <
 * environment (Temporal's own `TEMPORAL_ADDRESS` / `TEMPORAL_NAMESPACE`, plus `RUNFLEET_*`) <
 * command-line flags. A bad value fails with `InvalidConfig` naming where
 * it came from (the variable, the flag, or the file and key).
 *
 * A `runfleet.yaml` in the working directory is never read on its own: the directory may be a
 * checkout of anyone's repository, and a file there could send the connection (and the API key
 * or client certificate of the Temporal profile) to another server. Name it with `--config`.
 *
 * Nothing else reads `process.env`: the CLI hands the environment in.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { parseDocument as ParseDocument } from 'yaml';
import { z } from 'zod';
import { parseByteSize, parseCpu } from './bytes';
import { RunfleetError } from './errors';
import { CONTROL_TASK_QUEUE } from './ids';
import { K8S_LABEL_KEY_RE, K8S_LABEL_VALUE_RE, K8S_NAME_RE } from './labels';
import { DRIVERS } from './types';
import { MAX_YAML_ALIASES, forbiddenKeyPath } from './structured-file';

/** The user's config file, under `$XDG_CONFIG_HOME` (default `~/.config`), read when no other is named. */
export const USER_CONFIG_FILE = ['runfleet', 'config.yaml'] as const;

const ADDRESS_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

const port = z.number().int('must be a whole number').min(1, 'must be 1-65535').max(65535, 'must be 1-65535');
const name = z
  .string()
  .regex(NAME_RE, 'must be 1-63 letters, digits, "_", "." or "-", starting with a letter or digit');
const path = z.string().min(1, 'must not be empty');
/** A size in bytes, or as "512Mi", "2Gi". */
const byteSize = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const bytes = parseByteSize(value);
  if (bytes === null || bytes < 6 * 2 ** 20) {
    ctx.addIssue({ code: 'custom', message: `"${String(value)}" is not a size of 6Mi or more, like "512Mi" or "2Gi"` });
    return z.NEVER;
  }
  return bytes;
});

/** CPU as cores (2, 0.5) or millicores ("500m"), parsed to millicores. */
const cpu = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const millis = parseCpu(value);
  if (millis === null || millis < 1) {
    ctx.addIssue({ code: 'custom', message: `"${String(value)}" is not a CPU amount like "500m", "2" or 0.5` });
    return z.NEVER;
  }
  return millis;
});
/** A `host:port` address (a hostname, IPv4 or bracketed IPv6, and a port 1-65535). */
const hostPort = (example: string) =>
  z
    .string()
    .regex(ADDRESS_RE, { message: `must be host:port, like ${example}`, abort: true })
    .refine((a) => {
      const p = Number(a.slice(a.lastIndexOf(':') + 1));
      return p >= 1 && p <= 65535;
    }, 'the port must be 1-65535');
const k8sName = z.string().regex(K8S_NAME_RE, 'must be a Kubernetes name (lower-case letters, digits and "-")');

export const ConfigSchema = z.strictObject({
  temporal: z
    .strictObject({
      /** Temporal frontend, `host:port`. Default `localhost:7233` (the dev server's port). */
      address: hostPort('localhost:7233').default('localhost:7233'),
      /**
       * Temporal's HTTP API, `host:port` (the frontend's `httpPort`, 7243 by convention). When
       * set, `run list` and `run show` read through it instead of gRPC and start in a fraction of
       * the time, with the same TLS and API key. Unset: gRPC for everything.
       */
      httpAddress: hostPort('localhost:7243').optional(),
      /** Temporal namespace. Default `default`. */
      namespace: z.string().min(1, 'must not be empty').max(255).default('default'),
      /** Task queue of the control worker. Default `runfleet-control`. */
      controlTaskQueue: z.string().min(1, 'must not be empty').max(255).default(CONTROL_TASK_QUEUE),
      /** How long a client waits for the server before it reports it unreachable. Default 5 s. */
      connectTimeoutMs: z.number().int().min(100).max(600_000).default(5_000),
    })
    .prefault({}),
  /** Local state of this machine (server binary cache, data). Default `<cwd>/.runfleet`. */
  home: path.optional(),
  /** Where `up` and `server start-dev` keep the SQLite file and local runner data. Default `<home>/data`. */
  dataDir: path.optional(),
  server: z
    .strictObject({
      /** Dev server gRPC port. Default 7233. */
      port: port.default(7233),
      /** Dev server Web UI port. Default 8233. */
      uiPort: port.default(8233),
      /**
       * Dev server HTTP API port (`temporal.httpAddress` of its clients). Default: the gRPC port
       * plus 10 (7243), Temporal's own convention.
       */
      httpPort: port.optional(),
    })
    .prefault({}),
  runner: z
    .strictObject({
      /** Runner name (its task queue is `runner/<name>`). Default `local`. */
      name: name.default('local'),
      /** Pool the runner reserves work from. Default `default`. */
      pool: name.default('default'),
      /** Concurrent tasks. Default 4. */
      slots: z
        .number()
        .int('must be a whole number')
        .min(1, 'must be at least 1')
        .max(256, 'must be at most 256')
        .default(4),
      /** A reserved slot not used in this time is given back. Default: the runner's own. */
      evictionMs: z.number().int().min(1000).max(3_600_000).optional(),
      /** Registration token from `runner create` (needed only until the runner is registered). */
      token: z
        .string()
        .regex(/^rfr_[A-Za-z0-9_-]+$/, 'must be a token printed by `runfleet runner create` (rfr_...)')
        .optional(),
      /** Drivers offered. Default: process. */
      drivers: z.array(z.enum(DRIVERS)).min(1, 'must name at least one driver').default(['process']),
      /** The Docker-API socket of the docker driver (Podman's works). Default: $DOCKER_HOST or /run/podman/podman.sock. */
      dockerSocket: path.optional(),
      /**
       * Credentials for private registries the docker driver pulls from: a file in Docker's
       * `config.json` format (`{"auths": {"host": {"auth": base64(user:password)}}}`, as `docker
       * login` writes it). Default: none (public images only).
       */
      registryAuthFile: path.optional(),
      /** Port of the runner's /livez and /readyz (0: any free port). Default: none served. */
      healthPort: z
        .number()
        .int('must be a whole number')
        .min(0, 'must be 0-65535')
        .max(65535, 'must be 0-65535')
        .optional(),
      /** Days task logs and workspaces stay on the runner after their run's last change. Default 7. */
      logRetentionDays: z.coerce
        .number()
        .min(0.001, 'must be more than 0')
        .max(3650, 'must be at most 3650')
        .default(7),
      /**
       * Seconds between two looks for leftovers while the runner serves: session records no
       * process recovered, task folders or containers no record claims, and tasks of runners the
       * fleet purged. Default 300.
       */
      sweepSeconds: z.coerce
        .number()
        .int('must be a whole number')
        .min(1, 'must be at least 1')
        .max(86_400, 'must be at most 86400 (a day)')
        .default(300),
      /**
       * The user ids process-driver tasks run as when the runner is root, `FIRST-LAST` (each task
       * gets one of its own; uid = gid, no passwd entry needed), or `none` (tasks run as the runner:
       * trusted code only). Default: 1000 ids from 100000000, offset by the state directory, so two
       * runners on one machine do not share ids (src/runner/task-user.ts).
       */
      taskUids: z
        .string()
        .regex(/^(none|\d{4,10}-\d{4,10})$/, 'must be FIRST-LAST (numeric user ids) or none')
        .optional(),
      /**
       * `uid:gid` the docker driver's tasks run as. Default `65534:65534` (nobody): a task is not
       * root in its container, so an engine or kernel flaw is not root on the host. Numeric, so the
       * runner can give that user the task's workspace.
       */
      containerUser: z
        .string()
        .regex(/^\d{1,10}:\d{1,10}$/, 'must be a numeric uid:gid like 65534:65534')
        .default('65534:65534'),
      /**
       * Whether a docker task may run as root in its container (`run_as_root: true`). Default false:
       * root (even with every capability dropped) owns the image and is one kernel flaw from the
       * host; only a runner whose tasks are trusted should allow it.
       */
      allowRoot: z.boolean().default(false),
      /**
       * A docker task's memory limit (swap included) when it names none: bytes or "2Gi". Default
       * 2Gi: a compiler or a test suite fits, a leak is killed in its container, not the host's.
       */
      containerMemory: byteSize.default(2 * 2 ** 30),
      /** The most memory a docker task may ask for (`resources.memory`). Default 8Gi. */
      containerMemoryMax: byteSize.default(8 * 2 ** 30),
      /**
       * A docker task's limit of processes and threads at once when it names none. Default 1024: a
       * parallel build fits, a fork bomb stops there instead of exhausting the host's pids.
       */
      containerPids: z.number().int().min(8, 'must be at least 8').max(4_194_304).default(1024),
      /** The most processes a docker task may ask for (`resources.pids`). Default 32768. */
      containerPidsMax: z.number().int().min(8, 'must be at least 8').max(4_194_304).default(32_768),
      /** A container task's CPU limit when it names none (`resources.cpu`). Default: none (the node's). */
      containerCpu: cpu.optional(),
      /** The most CPU a container task may ask for (`resources.cpu`). Default 16 cores. */
      containerCpuMax: cpu.default(16_000),
      /**
       * The kubernetes driver (docs/kubernetes.md): where its pods go and what they may be.
       */
      kubernetes: z
        .strictObject({
          /**
           * A kubeconfig file (`RUNFLEET_KUBECONFIG`). Default: `$KUBECONFIG`, else the service
           * account of the pod the runner runs in (in-cluster).
           */
          kubeconfig: path.optional(),
          /** The namespace of the tasks' pods (`RUNFLEET_KUBERNETES_NAMESPACE`). Default `runfleet-<pool>`. */
          namespace: k8sName.optional(),
          /** Node labels every pod of this runner needs; a task adds to them, never changes them. */
          nodeSelector: z
            .record(
              z.string().regex(K8S_LABEL_KEY_RE, 'must be a Kubernetes label key like "kubernetes.io/arch"'),
              z.string().regex(K8S_LABEL_VALUE_RE, 'must be a Kubernetes label value'),
            )
            .default({}),
          /**
           * The service account of pods whose task names none. Default: none, and no token is
           * mounted: a task gets API access only when the operator gives it.
           */
          serviceAccount: k8sName.optional(),
          /** Service accounts a task may ask for (`service_account`). Default: none. */
          serviceAccounts: z.array(k8sName).max(64).default([]),
          /** Secrets (in the namespace) the pods pull private images with. Default: none. */
          imagePullSecrets: z.array(k8sName).max(16).default([]),
        })
        .prefault({}),
    })
    .prefault({}),
  encryption: z
    .strictObject({
      /**
       * The data keys file (`runfleet keys create`): clients and control workers encrypt payloads
       * with its first key. Default `<home>/keys/runfleet.keys`, used when it exists.
       */
      keyFile: path.optional(),
      /**
       * Let workers start without data keys, payloads in clear: for development and tests only
       * (`RUNFLEET_ALLOW_PLAINTEXT=1`). Default false: a control or fleet worker without keys
       * refuses to start, and a runner refuses a registration that delivers none.
       */
      allowPlaintext: z.boolean().default(false),
    })
    .prefault({}),
  operator: z
    .strictObject({
      /**
       * The operator signing key (`runfleet operator-key create`): the CLI signs token grants
       * and runner commands with it. Default `operator.key` beside `encryption.keyFile`.
       */
      keyFile: path.optional(),
      /**
       * base64 of the operator's Ed25519 public key, for control workers: they seal data keys
       * only for registrations it signed and apply only commands it signed. Default: the public
       * half of `keyFile` when this host has it; else none (no runner is admitted).
       */
      publicKey: z
        .string()
        .regex(/^[A-Za-z0-9+/]{43}=$/, 'must be base64 of a 32-byte Ed25519 public key')
        .optional(),
      /**
       * Control workers: runs refuse what a runner says (reservation answers, execution results,
       * lookup answers, reports) unless its registered signing key verifies it. Default true; off
       * only for runners without a registry record (`RUNFLEET_REQUIRE_RUNNER_PROOFS=0`, tests).
       */
      requireRunnerProofs: z.boolean().default(true),
    })
    .prefault({}),
  log: z
    .strictObject({
      /**
       * How foreground processes (workers, runners, `up`) write their log lines on stderr: `json`
       * (one object per line, with run, task, attempt and runner fields where they apply), `text`,
       * or `auto`: JSON when stderr is not a terminal. Default auto.
       */
      format: z.enum(['auto', 'text', 'json']).default('auto'),
      /** The Temporal SDK's lines below this level are dropped. Default: each command's own (info or warn). */
      level: z.enum(['debug', 'info', 'warn', 'error']).optional(),
    })
    .prefault({}),
  store: z
    .strictObject({
      /**
       * The bucket of the object store that keeps task logs beyond their runner (runners write,
       * control workers read). Default: none (logs stay on their runner only).
       */
      bucket: z
        .string()
        .regex(
          /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
          'must be an S3 bucket name (3-63 lowercase letters, digits, "." or "-")',
        )
        .optional(),
      /** Every key starts with it. Default `runfleet/`. */
      prefix: z
        .string()
        .max(200)
        .regex(/^([A-Za-z0-9_.-]+\/)*$/, 'must be folder names each ending with "/", like runfleet/ (or empty)')
        .default('runfleet/'),
      /** Default us-east-1. */
      region: z
        .string()
        .regex(/^[a-z0-9-]{2,40}$/, 'must be a region name like us-east-1')
        .default('us-east-1'),
      /** An S3-compatible server instead of AWS, `http(s)://host:port`. Default: AWS's own. */
      endpoint: z.url({ protocol: /^https?$/, error: 'must be an http(s):// URL' }).optional(),
      /** Path-style requests (`endpoint/bucket/key`): most S3-compatible servers want it. Default: true with an endpoint. */
      forcePathStyle: z.boolean().optional(),
      /**
       * A file with `accessKeyId` and `secretAccessKey` (YAML or JSON; `sessionToken` optional).
       * Default: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, else the SDK's chain (instance role).
       */
      credentialsFile: path.optional(),
      /** Seconds between two shipments of a running task's log: what a runner that dies can lose. Default 2. */
      logShipSeconds: z.coerce.number().min(0.1, 'must be at least 0.1').max(300, 'must be at most 300').default(2),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      /**
       * Port of the process's Prometheus endpoint (`/metrics`: the Temporal SDK's metrics and
       * Runfleet's, see docs/operating.md). Default: none served.
       */
      port: z.coerce
        .number()
        .int('must be a whole number')
        .min(1, 'must be 1-65535')
        .max(65535, 'must be 1-65535')
        .optional(),
      /** The address it listens on. Default 127.0.0.1; `0.0.0.0` for a scraper on another host. */
      host: z.string().min(1, 'must not be empty').default('127.0.0.1'),
    })
    .prefault({}),
  tracing: z
    .strictObject({
      /**
       * OTLP/HTTP traces endpoint (`http://collector:4318/v1/traces`); spans of the process are
       * sent there (src/tracing.ts). Default: none, no spans made.
       */
      endpoint: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
      /** `service.name` of the process's spans. Default: `runfleet-<command>` (worker, runner, up...). */
      serviceName: z.string().min(1, 'must not be empty').optional(),
    })
    .prefault({}),
});

type Parsed = z.output<typeof ConfigSchema>;

/** The configuration every command receives; every path is absolute. */
export interface Config {
  readonly temporal: Readonly<Parsed['temporal']>;
  readonly home: string;
  readonly dataDir: string;
  readonly server: Readonly<Parsed['server']>;
  readonly runner: Readonly<Parsed['runner']>;
  /** `keyFile` is absolute; it may not exist (then payloads travel unencrypted). */
  readonly encryption: { readonly keyFile: string; readonly allowPlaintext: boolean };
  /** `keyFile` is absolute and may not exist; `publicKey` null when not configured. */
  readonly operator: {
    readonly keyFile: string;
    readonly publicKey: string | null;
    readonly requireRunnerProofs: boolean;
  };
  readonly log: Readonly<Parsed['log']>;
  readonly metrics: Readonly<Parsed['metrics']>;
  readonly tracing: Readonly<Parsed['tracing']>;
  /** The object store; `credentialsFile` absolute when set (`src/store/settings.ts` reads it). */
  readonly store: Readonly<Parsed['store']>;
  /** The config file that was read, if any. */
  readonly configFile: string | null;
}

/** What flags may override (already converted to numbers by the CLI where they are numbers). */
export interface ConfigFlags {
  address?: string;
  namespace?: string;
  controlTaskQueue?: string;
  home?: string;
  dataDir?: string;
  port?: number;
  uiPort?: number;
  httpPort?: number;
  runnerName?: string;
  pool?: string;
  slots?: number;
  metricsPort?: number;
  logFormat?: string;
  logLevel?: string;
}

export interface LoadConfigOptions {
  cwd: string;
  /** The process environment (the CLI passes `process.env`). */
  env: Readonly<Record<string, string | undefined>>;
  /**
   * `--config FILE`: must exist. Without it `RUNFLEET_CONFIG` (must exist), else the user's
   * config file when present; never a file of `cwd`.
   */
  configFile?: string;
  /**
   * A runner's own file (`<state dir>/runner.yaml`), read after the config file when it exists.
   * It may set only RUNNER_FILE_KEYS.
   */
  runnerConfigFile?: string;
  flags?: ConfigFlags;
}

/** The dev server's HTTP API port: `server.httpPort`, else the gRPC port + 10 (0, a free one, past 65535). */
export function devServerHttpPort(server: Config['server']): number {
  if (server.httpPort !== undefined) return server.httpPort;
  return server.port + 10 <= 65535 ? server.port + 10 : 0;
}

/** The keys a runner's own file (`runner.yaml`) may set: this runner's settings, nothing shared. */
export const RUNNER_FILE_KEYS = [
  'temporal.address',
  'temporal.namespace',
  'runner.name',
  'runner.pool',
  'runner.token',
  'runner.drivers',
  'runner.dockerSocket',
  'runner.registryAuthFile',
  'runner.slots',
  'runner.healthPort',
  'runner.evictionMs',
  'runner.logRetentionDays',
  'runner.sweepSeconds',
  'runner.taskUids',
  'runner.containerUser',
  'runner.allowRoot',
  'runner.containerMemory',
  'runner.containerMemoryMax',
  'runner.containerPids',
  'runner.containerPidsMax',
  'runner.containerCpu',
  'runner.containerCpuMax',
  'runner.kubernetes.kubeconfig',
  'runner.kubernetes.namespace',
  'runner.kubernetes.nodeSelector',
  'runner.kubernetes.serviceAccount',
  'runner.kubernetes.serviceAccounts',
  'runner.kubernetes.imagePullSecrets',
  'store.bucket',
  'store.prefix',
  'store.region',
  'store.endpoint',
  'store.forcePathStyle',
  'store.credentialsFile',
  'store.logShipSeconds',
] as const;

export type RunnerFileKey = (typeof RUNNER_FILE_KEYS)[number];

/** The file in a runner's state directory that holds its settings. */
export const RUNNER_CONFIG_FILE = 'runner.yaml';

/** Environment variables and the config key each sets. */
const ENV_KEYS: Record<string, string> = {
  TEMPORAL_ADDRESS: 'temporal.address',
  TEMPORAL_NAMESPACE: 'temporal.namespace',
  RUNFLEET_HTTP_ADDRESS: 'temporal.httpAddress',
  RUNFLEET_CONTROL_TASK_QUEUE: 'temporal.controlTaskQueue',
  RUNFLEET_CONNECT_TIMEOUT_MS: 'temporal.connectTimeoutMs',
  RUNFLEET_HOME: 'home',
  RUNFLEET_DATA_DIR: 'dataDir',
  RUNFLEET_LOG_RETENTION_DAYS: 'runner.logRetentionDays',
  RUNFLEET_SWEEP_SECONDS: 'runner.sweepSeconds',
  RUNFLEET_LOG_FORMAT: 'log.format',
  RUNFLEET_LOG_LEVEL: 'log.level',
  RUNFLEET_METRICS_PORT: 'metrics.port',
  RUNFLEET_METRICS_HOST: 'metrics.host',
  // OpenTelemetry's own names (OTEL_EXPORTER_OTLP_ENDPOINT is read too: see `loadConfig`).
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'tracing.endpoint',
  OTEL_SERVICE_NAME: 'tracing.serviceName',
  RUNFLEET_STORE_BUCKET: 'store.bucket',
  RUNFLEET_STORE_PREFIX: 'store.prefix',
  RUNFLEET_STORE_REGION: 'store.region',
  RUNFLEET_STORE_ENDPOINT: 'store.endpoint',
  RUNFLEET_STORE_CREDENTIALS_FILE: 'store.credentialsFile',
  RUNFLEET_STORE_LOG_SHIP_SECONDS: 'store.logShipSeconds',
  RUNFLEET_RUNNER_TOKEN: 'runner.token',
  RUNFLEET_REGISTRY_AUTH_FILE: 'runner.registryAuthFile',
  RUNFLEET_KUBECONFIG: 'runner.kubernetes.kubeconfig',
  RUNFLEET_KUBERNETES_NAMESPACE: 'runner.kubernetes.namespace',
  RUNFLEET_KEY_FILE: 'encryption.keyFile',
  RUNFLEET_ALLOW_PLAINTEXT: 'encryption.allowPlaintext',
  RUNFLEET_OPERATOR_KEY_FILE: 'operator.keyFile',
  RUNFLEET_OPERATOR_PUBLIC_KEY: 'operator.publicKey',
  RUNFLEET_REQUIRE_RUNNER_PROOFS: 'operator.requireRunnerProofs',
};

/** Flags and the config key each sets. */
const FLAG_KEYS: Record<keyof ConfigFlags, [key: string, flag: string]> = {
  address: ['temporal.address', '--address'],
  namespace: ['temporal.namespace', '--namespace'],
  controlTaskQueue: ['temporal.controlTaskQueue', '--task-queue'],
  home: ['home', '--home'],
  dataDir: ['dataDir', '--data-dir'],
  port: ['server.port', '--port'],
  uiPort: ['server.uiPort', '--ui-port'],
  httpPort: ['server.httpPort', '--http-port'],
  runnerName: ['runner.name', '--name'],
  pool: ['runner.pool', '--pool'],
  slots: ['runner.slots', '--slots'],
  metricsPort: ['metrics.port', '--metrics-port'],
  logFormat: ['log.format', '--log-format'],
  logLevel: ['log.level', '--log-level'],
};

const PATH_KEYS = new Set([
  'home',
  'dataDir',
  'encryption.keyFile',
  'operator.keyFile',
  'runner.dockerSocket',
  'runner.registryAuthFile',
  'store.credentialsFile',
]);
/** Keys set by a variable whose schema takes a number. */
const NUMBER_KEYS = new Set(['temporal.connectTimeoutMs']);
/** Keys set by a variable whose schema takes a boolean (`1`/`true`, `0`/`false`). */
const BOOLEAN_KEYS = new Set(['encryption.allowPlaintext', 'operator.requireRunnerProofs']);

/** Loads and validates the configuration; the result is deeply frozen. */
export function loadConfig(opts: LoadConfigOptions): Config {
  const merged: Record<string, unknown> = {};
  /** Where each key's value came from, to name it in an error. */
  const origin = new Map<string, string>();

  const file = findConfigFile(opts);
  if (file) {
    const fromFile = readConfigFile(file);
    for (const [key, value] of flatten(fromFile)) {
      setPath(merged, key, PATH_KEYS.has(key) && typeof value === 'string' ? resolve(dirname(file), value) : value);
      origin.set(key, `${file}: ${key}`);
    }
  }

  const runnerFile = opts.runnerConfigFile === undefined ? null : resolve(opts.cwd, opts.runnerConfigFile);
  // A runner nobody configured has no file: that is the normal case, not an error.
  if (runnerFile && existsSync(runnerFile)) {
    const entries = readRunnerConfigFile(runnerFile);
    for (const [key, value] of entries) {
      setPath(
        merged,
        key,
        PATH_KEYS.has(key) && typeof value === 'string' ? resolve(dirname(runnerFile), value) : value,
      );
      origin.set(key, `${runnerFile}: ${key}`);
    }
  }

  // OpenTelemetry's base endpoint: traces go to its /v1/traces (a traces endpoint set anywhere wins).
  const otlpBase = opts.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  if (otlpBase !== undefined && otlpBase !== '' && !origin.has('tracing.endpoint')) {
    setPath(merged, 'tracing.endpoint', `${otlpBase.replace(/\/+$/, '')}/v1/traces`);
    origin.set('tracing.endpoint', 'OTEL_EXPORTER_OTLP_ENDPOINT');
  }

  for (const [variable, key] of Object.entries(ENV_KEYS)) {
    const value = opts.env[variable];
    // An empty variable is unset, as in most shells' `VAR= cmd`.
    if (value === undefined || value === '') continue;
    // A variable is text: a whole number becomes one (anything else reaches the schema, which names it).
    const typed =
      NUMBER_KEYS.has(key) && /^\d+$/.test(value.trim())
        ? Number(value)
        : BOOLEAN_KEYS.has(key) && /^(1|true|0|false)$/.test(value.trim())
          ? ['1', 'true'].includes(value.trim())
          : value;
    setPath(merged, key, PATH_KEYS.has(key) ? resolve(opts.cwd, value) : typed);
    origin.set(key, variable);
  }

  for (const [flagName, value] of Object.entries(opts.flags ?? {})) {
    if (value === undefined) continue;
    const [key, flag] = FLAG_KEYS[flagName as keyof ConfigFlags];
    setPath(merged, key, PATH_KEYS.has(key) && typeof value === 'string' ? resolve(opts.cwd, value) : value);
    origin.set(key, flag);
  }

  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = issue.path.map(String).join('.');
      // An array element's issue (`runner.drivers.1`) came from where its array was set.
      const where = origin.get(key) ?? origin.get(key.replace(/\.\d+$/, '')) ?? (key || '(config)');
      if (issue.code === 'unrecognized_keys') {
        const keys = issue.keys.map((k) => (key ? `${key}.${k}` : k)).join(', ');
        return `${file ?? 'config'}: unknown field${issue.keys.length > 1 ? 's' : ''} ${keys}`;
      }
      return `${where}: ${issue.message}`;
    });
    throw new RunfleetError(
      'InvalidConfig',
      lines.length === 1
        ? `invalid configuration: ${lines[0]}`
        : ['invalid configuration:', ...lines.map((l) => `  ${l}`)].join('\n'),
    );
  }

  const home = parsed.data.home ?? resolve(opts.cwd, '.runfleet');
  const keyFile = parsed.data.encryption.keyFile ?? resolve(home, 'keys', 'runfleet.keys');
  const config: Config = {
    temporal: parsed.data.temporal,
    home,
    dataDir: parsed.data.dataDir ?? resolve(home, 'data'),
    server: parsed.data.server,
    runner: parsed.data.runner,
    encryption: { keyFile, allowPlaintext: parsed.data.encryption.allowPlaintext },
    operator: {
      keyFile: parsed.data.operator.keyFile ?? resolve(dirname(keyFile), 'operator.key'),
      publicKey: parsed.data.operator.publicKey ?? null,
      requireRunnerProofs: parsed.data.operator.requireRunnerProofs,
    },
    log: parsed.data.log,
    metrics: parsed.data.metrics,
    tracing: parsed.data.tracing,
    store: parsed.data.store,
    configFile: file,
  };
  return deepFreeze(config);
}

/**
 * A runner's state directory (pid file, log, runner.yaml, workspaces): `--state-dir`, else
 * `<home>/runners/<runner name>`.
 */
export function runnerStateDir(config: Config, flags: { stateDir?: string; cwd: string }): string {
  if (flags.stateDir !== undefined && flags.stateDir !== '') return resolve(flags.cwd, flags.stateDir);
  return resolve(config.home, 'runners', config.runner.name);
}

/**
 * A runner file's settings as `[dotted key, value]` pairs; a syntax error or a key a runner file
 * may not set is `InvalidConfig` naming the file.
 */
export function readRunnerConfigFile(file: string): [RunnerFileKey, unknown][] {
  const entries = flatten(readConfigFile(file));
  const unknown = entries.map(([key]) => key).filter((key) => !(RUNNER_FILE_KEYS as readonly string[]).includes(key));
  if (unknown.length > 0) {
    throw new RunfleetError(
      'InvalidConfig',
      `invalid configuration: ${file}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (a runner file takes ${RUNNER_FILE_KEYS.join(', ')})`,
    );
  }
  return entries as [RunnerFileKey, unknown][];
}

function findConfigFile(opts: LoadConfigOptions): string | null {
  const named: [string | undefined, string][] = [
    [opts.configFile, '--config'],
    [opts.env['RUNFLEET_CONFIG'] || undefined, 'RUNFLEET_CONFIG'],
  ];
  for (const [given, where] of named) {
    if (given === undefined) continue;
    const file = resolve(opts.cwd, given);
    if (!existsSync(file)) throw new RunfleetError('InvalidConfig', `config file ${file} (${where}) does not exist`);
    return file;
  }
  const file = userConfigFile(opts.env);
  return file && existsSync(file) ? file : null;
}

/** `$XDG_CONFIG_HOME/runfleet/config.yaml`, else `$HOME/.config/runfleet/config.yaml`; null without either. */
export function userConfigFile(env: Readonly<Record<string, string | undefined>>): string | null {
  const base = env['XDG_CONFIG_HOME'] || (env['HOME'] ? join(env['HOME'], '.config') : undefined);
  return base ? join(base, ...USER_CONFIG_FILE) : null;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RunfleetError('InvalidConfig', `cannot read config file ${file}: ${(err as Error).message}`);
  }
  // Loaded here: most commands have no config file, and yaml is a sixth of a command's start-up.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parseDocument } = require('yaml') as { parseDocument: typeof ParseDocument };
  const doc = parseDocument(text, { prettyErrors: true });
  const first = doc.errors[0];
  if (first) {
    const at = first.linePos?.[0];
    const where = at ? `${file}:${at.line}:${at.col}` : file;
    // The first line is the message (with its position again at the end); the rest is an excerpt.
    const message = (first.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    throw new RunfleetError('InvalidConfig', `${where}: ${message}`);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    // yaml throws a ReferenceError for an alias bomb: the file's fault, not ours.
    if (!(err instanceof ReferenceError)) throw err;
    throw new RunfleetError(
      'InvalidConfig',
      `${file}: its YAML aliases expand too far (more than ${MAX_YAML_ALIASES}): refused`,
    );
  }
  // Refused before `setPath`, which would otherwise write through `__proto__` into Object.prototype.
  const forbidden = forbiddenKeyPath(value);
  if (forbidden !== null)
    throw new RunfleetError(
      'InvalidConfig',
      `${file}: ${forbidden}: this key is not allowed (it would change an object's prototype)`,
    );
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new RunfleetError('InvalidConfig', `${file}: the config file must be a mapping (key: value)`);
  }
  return value as Record<string, unknown>;
}

/** `{a: {b: 1}}` -> `[['a.b', 1]]`; arrays and scalars are leaves. */
/** Settings whose value is a map with keys of its own (which may hold dots): one leaf each. */
const MAP_KEYS = new Set(['runner.kubernetes.nodeSelector']);

function flatten(value: Record<string, unknown>, prefix = ''): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(value)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !MAP_KEYS.has(key))
      out.push(...flatten(v as Record<string, unknown>, key));
    else out.push([key, v]);
  }
  return out;
}

export function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1] as string] = value;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
