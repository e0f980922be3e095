/**
 * A runner's own config file, `<state dir>/runner.yaml`: this runner's settings (address, pool,
 * token, drivers, slots, ...), written by `runfleet runner configure` and read by the runner
 * commands as a layer between the config file and the environment (see src/config.ts).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { stringify as Stringify } from 'yaml';
import {
  ConfigSchema,
  RUNNER_CONFIG_FILE,
  RUNNER_FILE_KEYS,
  loadConfig,
  readRunnerConfigFile,
  runnerStateDir,
  setPath,
  type Config,
  type LoadConfigOptions,
  type RunnerFileKey,
} from '../config';
import { formatByteSize, formatCpu } from '../bytes';
import { RunfleetError } from '../errors';
import type { ContainerPolicy } from './docker-driver';
import { defaultNamespace, type KubernetesPolicy } from './kubernetes-driver';

export { RUNNER_FILE_KEYS, type RunnerFileKey };

/** The settings of a runner file, by dotted key (`runner.slots`), as they are in the file. */
export type RunnerSettings = Partial<Record<RunnerFileKey, unknown>>;

/** Keys whose values are numbers and lists, to convert `--set key=value` text. */
const NUMBER_KEYS = new Set<string>([
  'runner.slots',
  'runner.healthPort',
  'runner.evictionMs',
  'runner.logRetentionDays',
  'runner.sweepSeconds',
  'runner.containerMemory',
  'runner.containerMemoryMax',
  'runner.containerPids',
  'runner.containerPidsMax',
  'store.logShipSeconds',
]);
const LIST_KEYS = new Set<string>([
  'runner.drivers',
  'runner.kubernetes.serviceAccounts',
  'runner.kubernetes.imagePullSecrets',
]);
/** Keys whose values are maps, typed as `key=value,key=value`. */
const MAP_KEYS = new Set<string>(['runner.kubernetes.nodeSelector']);
const BOOLEAN_KEYS = new Set<string>(['runner.allowRoot', 'store.forcePathStyle']);

/**
 * The sweep's interval, the docker driver's container policy and registry credentials, and the
 * object store: set with `--set` or in the file, not asked by the prompts
 * (joining the fleet does not need them; their defaults are the safe ones).
 */
const CONTAINER_KEYS = new Set<RunnerFileKey>([
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
  'runner.registryAuthFile',
  ...RUNNER_FILE_KEYS.filter((key) => key.startsWith('store.') || key.startsWith('runner.kubernetes.')),
]);

/** What each key is for, shown by the prompts. */
const DESCRIPTIONS: Record<RunnerFileKey, string> = {
  'temporal.address': 'Temporal address, host:port',
  'temporal.namespace': 'Temporal namespace',
  'runner.name': 'runner name, unique in the fleet',
  'runner.pool': 'pool to take work from',
  'runner.token': 'registration token (rfr_...)',
  'runner.drivers': 'drivers offered, comma-separated (process, docker, kubernetes)',
  'runner.dockerSocket': "the docker driver's Docker-API socket",
  'runner.registryAuthFile': "private registries' credentials, Docker's config.json format",
  'runner.slots': 'tasks run at once',
  'runner.healthPort': 'port of /livez and /readyz (0: any free port)',
  'runner.evictionMs': 'ms after which an unused reserved slot is given back',
  'runner.logRetentionDays': 'days task logs and workspaces are kept',
  'runner.sweepSeconds': 'seconds between two looks for leftover tasks while serving (default 300)',
  'runner.taskUids': 'user ids of process-driver tasks on a root runner, FIRST-LAST or none',
  'runner.containerUser': 'uid:gid of docker tasks (default 65534:65534)',
  'runner.allowRoot': 'whether a docker task may run as root (run_as_root)',
  'runner.containerMemory': "a docker task's memory limit when it names none (default 2Gi)",
  'runner.containerMemoryMax': 'the most memory a docker task may ask for (default 8Gi)',
  'runner.containerPids': "a docker task's process limit when it names none (default 1024)",
  'runner.containerPidsMax': 'the most processes a docker task may ask for (default 32768)',
  'runner.containerCpu': 'CPU limit of a container task that names none, "500m" or cores (default: none)',
  'runner.containerCpuMax': 'the most CPU a container task may ask for (default 16)',
  'runner.kubernetes.kubeconfig': "the kubernetes driver's kubeconfig (default: $KUBECONFIG, else in-cluster)",
  'runner.kubernetes.namespace': 'namespace of kubernetes tasks (default runfleet-<pool>)',
  'runner.kubernetes.nodeSelector': 'node labels every pod is pinned to, key=value,key=value',
  'runner.kubernetes.serviceAccount':
    "service account of a pod whose task names none (default: the namespace's default)",
  'runner.kubernetes.serviceAccounts': 'service accounts a task may name, comma-separated',
  'runner.kubernetes.imagePullSecrets': 'pull secrets every pod gets, comma-separated',
  'store.bucket': 'S3 bucket task logs are shipped to (default: none, logs stay here)',
  'store.prefix': 'key prefix in that bucket (default runfleet/)',
  'store.region': "the store's region (default us-east-1)",
  'store.endpoint': 'an S3-compatible server, http(s)://host:port (default: AWS)',
  'store.forcePathStyle': 'path-style requests (default: true with an endpoint)',
  'store.credentialsFile': 'file with accessKeyId and secretAccessKey (default: AWS_* variables, instance role)',
  'store.logShipSeconds': "seconds between two shipments of a running task's log (default 2)",
};

export function runnerConfigPath(stateDir: string): string {
  return join(stateDir, RUNNER_CONFIG_FILE);
}

export interface RunnerConfig {
  config: Config;
  /** Absolute state directory (pid file, log, runner.yaml, workspaces). */
  stateDir: string;
  /** `<stateDir>/runner.yaml`; it may not exist. */
  file: string;
}

/**
 * The configuration of a runner command: the state directory comes from `--state-dir`, else from
 * the runner name of the other layers (`--name`, the config file); then its runner.yaml is
 * read as a layer of its own.
 */
export function loadRunnerConfig(opts: LoadConfigOptions & { stateDir?: string }): RunnerConfig {
  const { stateDir: flag, ...rest } = opts;
  const base = loadConfig(rest);
  const stateDir = runnerStateDir(base, { stateDir: flag, cwd: opts.cwd });
  const file = runnerConfigPath(stateDir);
  return { config: loadConfig({ ...rest, runnerConfigFile: file }), stateDir, file };
}

/** A key of `--set key=value`, checked: an unknown one names the valid ones. */
export function checkKey(key: string): RunnerFileKey {
  if ((RUNNER_FILE_KEYS as readonly string[]).includes(key)) return key as RunnerFileKey;
  throw new RunfleetError('InvalidArgument', `unknown key "${key}"; valid keys: ${RUNNER_FILE_KEYS.join(', ')}`);
}

/** `key=value` text as the value the schema takes (numbers and lists converted). */
export function parseSetting(assignment: string): [RunnerFileKey, unknown] {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new RunfleetError('InvalidArgument', `--set ${assignment}: expected key=value`);
  const key = checkKey(assignment.slice(0, eq).trim());
  return [key, settingValue(key, assignment.slice(eq + 1).trim())];
}

/** Text typed for a key as its value: numbers stay text when they are not numbers, so the schema names the problem. */
export function settingValue(key: RunnerFileKey, text: string): unknown {
  if (NUMBER_KEYS.has(key) && /^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (BOOLEAN_KEYS.has(key) && (text === 'true' || text === 'false')) return text === 'true';
  if (LIST_KEYS.has(key))
    return text
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
  if (MAP_KEYS.has(key)) {
    const entries = text
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0)
      .map((pair) => {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new RunfleetError('InvalidArgument', `${key}: "${pair}" is not key=value`);
        return [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()] as const;
      });
    return Object.fromEntries(entries);
  }
  return text;
}

/** Problems of settings, one line per key (`runner.slots: must be at most 256`); empty when valid. */
export function settingsProblems(settings: RunnerSettings): string[] {
  const nested: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(settings)) {
    if (value !== undefined) setPath(nested, key, value);
  }
  const parsed = ConfigSchema.safeParse(nested);
  if (parsed.success) return [];
  return parsed.error.issues.map((issue) => {
    const key = issue.path
      .map(String)
      .join('.')
      .replace(/\.\d+$/, '');
    return `${key || '(settings)'}: ${issue.message}`;
  });
}

/** The settings in a runner file (empty when there is none); the file's problems are InvalidConfig. */
export function readRunnerSettings(file: string): RunnerSettings {
  if (!existsSync(file)) return {};
  return Object.fromEntries(readRunnerConfigFile(file)) as RunnerSettings;
}

/**
 * Writes a runner file atomically (a reader never sees half of it), readable by its owner only:
 * it may hold a registration token.
 */
export function writeRunnerSettings(file: string, settings: RunnerSettings): void {
  const nested: Record<string, unknown> = {};
  for (const key of RUNNER_FILE_KEYS) {
    const value = settings[key];
    if (value !== undefined) setPath(nested, key, value);
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- yaml loads on use: see config.ts
    const { stringify } = require('yaml') as { stringify: typeof Stringify };
    writeFileSync(tmp, '# runfleet runner configure\n' + stringify(nested), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** A token shown without its secret part. */
export function maskToken(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  return token.length <= 8 ? '****' : `${token.slice(0, 8)}****`;
}

/** A runner's effective settings for `configure --show`: every file key, the token masked. */
export function effectiveSettings(config: Config): Record<RunnerFileKey, unknown> {
  return {
    'temporal.address': config.temporal.address,
    'temporal.namespace': config.temporal.namespace,
    'runner.name': config.runner.name,
    'runner.pool': config.runner.pool,
    'runner.token': maskToken(config.runner.token),
    'runner.drivers': config.runner.drivers,
    'runner.dockerSocket': config.runner.dockerSocket,
    'runner.registryAuthFile': config.runner.registryAuthFile,
    'runner.slots': config.runner.slots,
    'runner.healthPort': config.runner.healthPort,
    'runner.evictionMs': config.runner.evictionMs,
    'runner.logRetentionDays': config.runner.logRetentionDays,
    'runner.sweepSeconds': config.runner.sweepSeconds,
    'runner.taskUids': config.runner.taskUids,
    'runner.containerUser': config.runner.containerUser,
    'runner.allowRoot': config.runner.allowRoot,
    'runner.containerMemory': formatByteSize(config.runner.containerMemory),
    'runner.containerMemoryMax': formatByteSize(config.runner.containerMemoryMax),
    'runner.containerPids': config.runner.containerPids,
    'runner.containerPidsMax': config.runner.containerPidsMax,
    'runner.containerCpu': config.runner.containerCpu === undefined ? undefined : formatCpu(config.runner.containerCpu),
    'runner.containerCpuMax': formatCpu(config.runner.containerCpuMax),
    'runner.kubernetes.kubeconfig': config.runner.kubernetes.kubeconfig,
    'runner.kubernetes.namespace': config.runner.kubernetes.namespace,
    'runner.kubernetes.nodeSelector': config.runner.kubernetes.nodeSelector,
    'runner.kubernetes.serviceAccount': config.runner.kubernetes.serviceAccount,
    'runner.kubernetes.serviceAccounts': config.runner.kubernetes.serviceAccounts,
    'runner.kubernetes.imagePullSecrets': config.runner.kubernetes.imagePullSecrets,
    'store.bucket': config.store.bucket,
    'store.prefix': config.store.prefix,
    'store.region': config.store.region,
    'store.endpoint': config.store.endpoint,
    'store.forcePathStyle': config.store.forcePathStyle,
    'store.credentialsFile': config.store.credentialsFile,
    'store.logShipSeconds': config.store.logShipSeconds,
  };
}

/**
 * The docker driver's container policy from a runner's config; a default above its maximum is
 * `InvalidConfig` (every task would be refused).
 */
export function containerPolicy(runner: Config['runner']): ContainerPolicy {
  const problems: string[] = [];
  if (runner.containerMemory > runner.containerMemoryMax) {
    problems.push(
      `runner.containerMemory (${formatByteSize(runner.containerMemory)}) is above runner.containerMemoryMax (${formatByteSize(runner.containerMemoryMax)})`,
    );
  }
  if (runner.containerPids > runner.containerPidsMax) {
    problems.push(
      `runner.containerPids (${runner.containerPids}) is above runner.containerPidsMax (${runner.containerPidsMax})`,
    );
  }
  if (runner.containerCpu !== undefined && runner.containerCpu > runner.containerCpuMax) {
    problems.push(
      `runner.containerCpu (${formatCpu(runner.containerCpu)}) is above runner.containerCpuMax (${formatCpu(runner.containerCpuMax)})`,
    );
  }
  if (problems.length > 0) throw new RunfleetError('InvalidConfig', `invalid configuration: ${problems.join('; ')}`);
  return {
    user: runner.containerUser,
    allowRoot: runner.allowRoot,
    memory: { default: runner.containerMemory, max: runner.containerMemoryMax },
    pids: { default: runner.containerPids, max: runner.containerPidsMax },
    cpu: {
      ...(runner.containerCpu !== undefined ? { default: runner.containerCpu } : {}),
      max: runner.containerCpuMax,
    },
  };
}

/**
 * The kubernetes driver's settings from the runner's config: the kubeconfig (else `$KUBECONFIG`,
 * else in-cluster) and the policy of its pods.
 */
export function kubernetesSettings(
  runner: Config['runner'],
  env: Readonly<Record<string, string | undefined>>,
): { kubeconfig?: string; policy: KubernetesPolicy } {
  const k = runner.kubernetes;
  const kubeconfig = k.kubeconfig ?? (env['KUBECONFIG'] || undefined);
  return {
    ...(kubeconfig !== undefined ? { kubeconfig } : {}),
    policy: {
      namespace: k.namespace ?? defaultNamespace(runner.pool),
      nodeSelector: { ...k.nodeSelector },
      ...(k.serviceAccount !== undefined ? { serviceAccount: k.serviceAccount } : {}),
      serviceAccounts: [...k.serviceAccounts],
      imagePullSecrets: [...k.imagePullSecrets],
    },
  };
}

export interface PromptIO {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
}

/**
 * Asks for every key, the current value as the default (Enter keeps it, `-` clears it); an
 * invalid answer is explained and asked again. Returns the new settings.
 */
export async function promptSettings(current: RunnerSettings, io: PromptIO): Promise<RunnerSettings> {
  const rl = createInterface({ input: io.input, output: io.output, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  const ask = async (question: string): Promise<string | null> => {
    io.output.write(question);
    const next = await lines.next();
    return next.done ? null : next.value;
  };
  const out: RunnerSettings = { ...current };
  try {
    for (const key of RUNNER_FILE_KEYS) {
      if (CONTAINER_KEYS.has(key)) continue;
      for (;;) {
        const value = out[key];
        const shown =
          value === undefined ? '' : key === 'runner.token' ? String(maskToken(String(value))) : displayValue(value);
        const answer = await ask(`${key} (${DESCRIPTIONS[key]})${shown ? ` [${shown}]` : ''}: `);
        if (answer === null)
          throw new RunfleetError('InvalidArgument', 'configure: input ended before every key was answered');
        const text = answer.trim();
        if (text === '') break;
        const candidate: RunnerSettings = { ...out, [key]: text === '-' ? undefined : settingValue(key, text) };
        const problems = settingsProblems({ [key]: candidate[key] });
        if (problems.length === 0) {
          out[key] = candidate[key];
          break;
        }
        io.output.write(`  ${problems.join('\n  ')}\n`);
      }
    }
  } finally {
    rl.close();
  }
  return out;
}

/** A setting as `--set` takes it: lists `a,b`, maps `k=v,k2=v2`. */
export function displayValue(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'object')
    return Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(',');
  return String(value);
}
