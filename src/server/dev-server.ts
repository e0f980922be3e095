/**
 * Runs a Temporal dev server (`temporal server start-dev`) as a child process: the embedded mode of
 * `runfleet up` and the server of the integration tests. SQLite in a file, or in memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { msToTs } from '@temporalio/common/lib/time';
import { RunfleetError } from '../errors';
import { SEARCH_ATTRIBUTES } from '../search-attributes';
import { sleep } from '../sleep';
import { SERVER_DYNAMIC_CONFIG } from './dynamic-config';
import { freePort } from './ports';

export interface DevServerOptions {
  /** The `temporal` CLI (see `ensureTemporalBinary`). */
  binary: string;
  /** SQLite file that keeps workflows across restarts. Default: in memory, lost on stop. */
  dbFile?: string;
  /** Address the frontend (and the UI) bind to. Default: 127.0.0.1. */
  ip?: string;
  /** Frontend gRPC port. Default (or 0): a free port. */
  port?: number;
  /** Web UI port. Default: a free port. Ignored when headless. */
  uiPort?: number;
  /** HTTP API port. Default (or 0): a free port. */
  httpPort?: number;
  /** Dynamic config values (`--dynamic-config-value KEY=JSON`), on top of `SERVER_DYNAMIC_CONFIG`. */
  dynamicConfig?: Record<string, string | number | boolean>;
  /** No Web UI. Default: false. */
  headless?: boolean;
  /** Namespace to create and register search attributes in. Default: `default`. */
  namespace?: string;
  /** Gets the server's own output, line by line, and our progress lines. Default: dropped. */
  log?: (line: string) => void;
  /** Also append the server's output to this file. Default: none. */
  logFile?: string;
  /** How long to wait for the server to answer. Default: 60 s (a busy 2-core machine is slow). */
  readyTimeoutMs?: number;
}

export interface DevServer {
  /** `host:port` of the frontend, as `TEMPORAL_ADDRESS` takes it. */
  address: string;
  /** `host:port` of the HTTP API, as `RUNFLEET_HTTP_ADDRESS` takes it. */
  httpAddress: string;
  /** The Web UI, or null when headless. */
  uiUrl: string | null;
  namespace: string;
  /** SIGTERM, then SIGKILL after 10 s. Safe to call twice. */
  stop(): Promise<void>;
  process: ChildProcess;
}

/** A freshly started server on a 2-core machine under test load can take tens of seconds. */
const DEFAULT_READY_TIMEOUT_MS = 60_000;
/** The server flushes SQLite and stops its services on SIGTERM; 10 s is ample unless it hangs. */
const STOP_GRACE_MS = 10_000;
/** Each readiness probe is a fresh connect; keep it short so the loop notices an exit quickly. */
const PROBE_TIMEOUT_MS = 5_000;
const PROBE_INTERVAL_MS = 250;
/** Lines of server output kept for error messages. */
const OUTPUT_TAIL_LINES = 40;
/** A port picked by us can be taken before the server binds it; try a few fresh ones. */
const BIND_ATTEMPTS = 3;

type SearchAttributeTypeName = (typeof SEARCH_ATTRIBUTES)[keyof typeof SEARCH_ATTRIBUTES];

/** `KeywordList` (the CLI's spelling) to `KEYWORD_LIST` (the SDK's). */
function sdkTypeName(type: SearchAttributeTypeName): Parameters<typeof encodeSearchAttributeIndexedValueType>[0] {
  const map = { Keyword: 'KEYWORD', KeywordList: 'KEYWORD_LIST' } as const satisfies Record<
    SearchAttributeTypeName,
    string
  >;
  return map[type];
}

/**
 * Starts `temporal server start-dev`, waits until the namespace answers, and makes sure every
 * search attribute of `SEARCH_ATTRIBUTES` exists (the `--search-attribute` flag only applies to a
 * new database, so on an existing file the missing ones are added through the operator API).
 */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const pickPort = opts.port === undefined || opts.port === 0;
  const pickUiPort = !opts.headless && opts.uiPort === undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      const retryable =
        (pickPort || pickUiPort) &&
        attempt < BIND_ATTEMPTS &&
        err instanceof RunfleetError &&
        /address already in use/i.test(err.message);
      if (!retryable) throw err;
      opts.log?.(`dev-server: a picked port was taken meanwhile; retrying with fresh ports`);
    }
  }
}

async function startOnce(opts: DevServerOptions): Promise<DevServer> {
  const log = opts.log ?? (() => {});
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const headless = opts.headless ?? false;
  const port = opts.port === undefined || opts.port === 0 ? await freePort(ip) : opts.port;
  const uiPort = headless ? null : (opts.uiPort ?? (await freePort(ip)));
  const httpPort = opts.httpPort === undefined || opts.httpPort === 0 ? await freePort(ip) : opts.httpPort;
  const address = `${hostForUrl(ip)}:${port}`;
  const httpAddress = `${hostForUrl(ip)}:${httpPort}`;

  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--http-port', String(httpPort)];
  args.push('--log-level', 'warn');
  for (const [key, value] of Object.entries({ ...SERVER_DYNAMIC_CONFIG, ...opts.dynamicConfig }))
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  if (opts.dbFile !== undefined) {
    await mkdir(path.dirname(path.resolve(opts.dbFile)), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  if (uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(uiPort));
  args.push('--namespace', namespace);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);

  let logStream: WriteStream | undefined;
  if (opts.logFile !== undefined) {
    await mkdir(path.dirname(path.resolve(opts.logFile)), { recursive: true });
    logStream = createWriteStream(opts.logFile, { flags: 'a' });
  }

  log(`dev-server: ${opts.binary} ${args.join(' ')}`);
  const child = spawn(opts.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  // Chunks do not end on line boundaries: keep each stream's unfinished line for the next chunk.
  const lineSplitter = (): ((chunk: Buffer) => void) => {
    let partial = '';
    return (chunk) => {
      logStream?.write(chunk);
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim() === '') continue;
        tail.push(line);
        if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
        log(line);
      }
    };
  };
  child.stdout?.on('data', lineSplitter());
  child.stderr?.on('data', lineSplitter());

  let exited: string | null = null;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      exited = `could not be spawned: ${err.message}`;
      resolve();
    });
    child.once('exit', (code, signal) => {
      exited = signal !== null ? `was killed by ${signal}` : `exited with code ${code ?? 'unknown'}`;
      resolve();
    });
  });
  const closeLog = (): Promise<void> =>
    new Promise((resolve) => (logStream === undefined ? resolve() : logStream.end(() => resolve())));

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exited === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => {
          if (exited === null) child.kill('SIGKILL');
        }, STOP_GRACE_MS);
        await exitPromise;
        clearTimeout(timer);
      }
      await closeLog();
    })();
    return stopping;
  };

  const fail = async (what: string, cause?: unknown): Promise<never> => {
    await stop();
    const output = tail.length > 0 ? `\nLast server output:\n${tail.join('\n')}` : '';
    throw new RunfleetError(
      'ComponentUnavailable',
      `The Temporal dev server (${opts.binary}, ${address}) ${what}.${output}`,
      cause === undefined ? undefined : { cause: String(cause) },
    );
  };

  const timeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  let connection: Connection | undefined;
  try {
    connection = await waitReady({ address, namespace, timeoutMs, exit: exitPromise });
  } catch (err) {
    if (exited !== null) return fail(exited);
    return fail(`did not answer within ${Math.round(timeoutMs / 1000)} s (last error: ${errorMessage(err)})`, err);
  }

  try {
    await ensureSearchAttributes(connection, namespace, log);
  } catch (err) {
    return fail(`started, but registering search attributes failed: ${errorMessage(err)}`, err);
  } finally {
    await connection.close().catch(() => {});
  }

  const uiUrl = uiPort === null ? null : `http://${hostForUrl(ip)}:${uiPort}`;
  log(`dev-server: ready at ${address}${uiUrl !== null ? `, Web UI ${uiUrl}` : ''}`);
  return { address, httpAddress, uiUrl, namespace, stop, process: child };
}

/**
 * Connects and asks for system info and the namespace until both answer, or the deadline. Every
 * attempt races the process's exit, so a server that dies at startup is reported at once.
 */
async function waitReady(opts: {
  address: string;
  namespace: string;
  timeoutMs: number;
  exit: Promise<void>;
}): Promise<Connection> {
  const deadline = Date.now() + opts.timeoutMs;
  let exited = false;
  const exit = opts.exit.then(() => {
    exited = true;
    return 'exited' as const;
  });
  let lastError: unknown = new Error('no attempt made');
  while (!exited && Date.now() < deadline) {
    const attempt = (async () => {
      const connection = await Connection.connect({ address: opts.address, connectTimeout: PROBE_TIMEOUT_MS });
      try {
        await connection.withDeadline(Date.now() + PROBE_TIMEOUT_MS, async () => {
          await connection.workflowService.getSystemInfo({});
          await connection.workflowService.describeNamespace({ namespace: opts.namespace });
        });
        return connection;
      } catch (err) {
        await connection.close().catch(() => {});
        throw err;
      }
    })();
    try {
      const winner = await Promise.race([attempt, exit]);
      if (winner !== 'exited') return winner;
      // The process is gone; a connection the attempt may still open must not leak.
      attempt
        .then(
          (c) => c.close(),
          () => {},
        )
        .catch(() => {});
      break;
    } catch (err) {
      lastError = err;
      await Promise.race([sleep(PROBE_INTERVAL_MS), exit]);
    }
  }
  throw exited ? new Error('the process exited') : lastError;
}

/**
 * Adds the search attributes the namespace lacks; an existing one of another type is an error.
 * Also for a Temporal service Runfleet did not start (the test suite against an external one).
 */
export async function ensureSearchAttributes(
  connection: Pick<Connection, 'operatorService'>,
  namespace: string,
  log: (line: string) => void,
): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const custom = existing.customAttributes ?? {};
  const missing: Record<string, number> = {};
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
    const wanted = encodeSearchAttributeIndexedValueType(sdkTypeName(type));
    if (wanted === undefined) throw new Error(`unknown search attribute type ${type}`);
    const have = custom[name];
    if (have === undefined || have === null) missing[name] = wanted;
    else if (have !== wanted) {
      throw new Error(
        `search attribute ${name} exists in namespace ${namespace} with another type; ` +
          `Runfleet needs ${type}. Use a new database file.`,
      );
    }
  }
  const names = Object.keys(missing);
  if (names.length === 0) return;
  log(`dev-server: adding search attributes ${names.join(', ')} to namespace ${namespace}`);
  await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
}

/**
 * Registers `namespace` when missing (retention 72 h), then adds Runfleet's search attributes,
 * waiting while a new namespace still reads as "not found" (the namespace cache: about 10 s).
 */
export async function ensureNamespace(
  connection: Pick<Connection, 'operatorService' | 'workflowService'>,
  namespace: string,
  log: (line: string) => void,
): Promise<void> {
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs('72h'),
    });
    log(`namespace ${namespace} created`);
  } catch (err) {
    if (!/already/i.test(String((err as Error).message))) throw err;
  }
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await ensureSearchAttributes(connection, namespace, log);
      return;
    } catch (err) {
      if (Date.now() > deadline || !/not found/i.test(String((err as Error).message))) throw err;
      await sleep(1000);
    }
  }
}

function hostForUrl(ip: string): string {
  return ip.includes(':') ? `[${ip}]` : ip;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
