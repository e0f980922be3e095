/**
 * Temporal as a service: the frontend, history, matching and worker services as four processes of
 * the real server (go.temporal.io/server) on a PostgreSQL of their own. `scripts/cluster` runs it
 * for operators; the cluster test tier and the service-fault tests start, kill and restart its
 * parts. Everything lives in one state directory: PostgreSQL's data, the server's config, logs,
 * pid files and `cluster.json` (ports and password), so another process can find and control a
 * running cluster.
 *
 * The server and its SQL tool are built with Go from `scripts/temporal-service` (a module that
 * requires the temporal CLI's own version, so the build reuses what building the CLI compiled).
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { z } from 'zod';
import { RunfleetError } from '../errors';
import { isAlive } from '../process-alive';
import { sleep } from '../sleep';
import { ensureNamespace } from './dev-server';
import { SERVER_DYNAMIC_CONFIG } from './dynamic-config';
import { freePorts, isPortFree } from './ports';
import { TEMPORAL_SERVER_VERSION, TOOLS_BIN_DIR } from './temporal-binary';

/** Started in this order: concurrent first starts on a new database race on the cluster metadata. */
export const SERVICES = ['history', 'matching', 'frontend', 'worker'] as const;
export type Service = (typeof SERVICES)[number];

const Port = z.number().int().min(1).max(65535);
const Ports = z.strictObject({ grpc: Port, membership: Port });

/**
 * What another process needs to find a running cluster, written once at `create` to
 * `cluster.json`: the frontend's `address` (`host:port`, as TEMPORAL_ADDRESS takes it), each
 * service's gRPC and membership port (the worker serves no gRPC), the HTTP port, PostgreSQL's
 * port and the password of its role `temporal` (the file is mode 600; never printed).
 */
const ClusterInfoSchema = z.strictObject({
  address: z.string().min(1),
  pgPort: Port,
  ports: z.strictObject({ history: Ports, matching: Ports, frontend: Ports, worker: Ports }),
  httpPort: Port,
  password: z.string().min(16),
});
export type ClusterInfo = z.infer<typeof ClusterInfoSchema>;

/** The frontend's HTTP API, `host:port` (`RUNFLEET_HTTP_ADDRESS` of its clients). */
export function clusterHttpAddress(info: ClusterInfo): string {
  return `127.0.0.1:${info.httpPort}`;
}

export interface ClusterOptions {
  projectRoot: string;
  /** Default `<projectRoot>/.runfleet/cluster`. */
  stateDir?: string;
  /** Frontend gRPC port; the others follow it (+1 history, +2 matching, +3 worker, +10.. membership). 0: free ports. */
  port?: number;
  /** PostgreSQL's port. 0: a free one. */
  pgPort?: number;
  namespace?: string;
  log?: (line: string) => void;
}

const SERVER_BINARY = 'temporal-server';
const SQL_BINARY = 'temporal-sql-tool';
const DEFAULT_PORT = 7433;
const DEFAULT_PG_PORT = 55432;
const DATABASES = [
  { name: 'temporal', schema: 'temporal' },
  { name: 'temporal_visibility', schema: 'visibility' },
] as const;
/** A first start migrates nothing but still joins membership: tens of seconds on a busy machine. */
const SERVICE_READY_MS = 120_000;
const STOP_GRACE_MS = 10_000;

export class Cluster {
  readonly projectRoot: string;
  readonly stateDir: string;
  readonly namespace: string;
  private readonly log: (line: string) => void;
  private readonly wantedPort: number;
  private readonly wantedPgPort: number;

  constructor(opts: ClusterOptions) {
    this.projectRoot = opts.projectRoot;
    this.stateDir = opts.stateDir ?? path.join(opts.projectRoot, '.runfleet', 'cluster');
    this.namespace = opts.namespace ?? 'default';
    this.log = opts.log ?? (() => {});
    this.wantedPort = opts.port ?? DEFAULT_PORT;
    this.wantedPgPort = opts.pgPort ?? DEFAULT_PG_PORT;
  }

  private get binDir(): string {
    return path.join(this.projectRoot, TOOLS_BIN_DIR);
  }
  private get pgData(): string {
    return path.join(this.stateDir, 'pg');
  }
  private get logDir(): string {
    return path.join(this.stateDir, 'logs');
  }
  private get infoFile(): string {
    return path.join(this.stateDir, 'cluster.json');
  }
  private pidFile(name: Service): string {
    return path.join(this.stateDir, `${name}.pid`);
  }

  /** The cluster's ports and password, or null before the first `start`; a damaged file is an error naming it. */
  info(): ClusterInfo | null {
    if (!existsSync(this.infoFile)) return null;
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(this.infoFile, 'utf8'));
    } catch (err) {
      throw unavailable(`${this.infoFile}: ${(err as Error).message} (\`scripts/cluster destroy\` starts afresh)`);
    }
    const parsed = ClusterInfoSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.map(String).join('.') || '(file)';
      throw unavailable(
        `${this.infoFile}: ${where}: ${issue?.message ?? 'invalid'} (\`scripts/cluster destroy\` starts afresh)`,
      );
    }
    return parsed.data;
  }

  private requireInfo(): ClusterInfo {
    const info = this.info();
    if (info === null) throw unavailable(`no cluster in ${this.stateDir}: run \`scripts/cluster start\` first`);
    return info;
  }

  /** Builds what is missing, then starts PostgreSQL, the schema, the four services and the namespace. */
  async start(): Promise<ClusterInfo> {
    const binaries = await ensureServiceBinaries({ projectRoot: this.projectRoot, log: this.log });
    ensurePostgres(this.log);
    const info = await this.create();
    await this.startPostgres();
    await this.setupSchema(binaries.sql, info);
    for (const service of SERVICES) await this.startService(service);
    await this.setupNamespace(info.address);
    this.log(`cluster: serving at ${info.address} (namespace ${this.namespace}, state in ${this.stateDir})`);
    return info;
  }

  /** Stops every service, then PostgreSQL. Keeps the data: `start` again resumes. */
  async stop(): Promise<void> {
    for (const service of [...SERVICES].reverse()) await this.stopService(service);
    await this.stopPostgres();
  }

  /** Stops everything and removes the state directory (data included). */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.stateDir, { recursive: true, force: true });
  }

  /** pid of a running service, or null. */
  pid(service: Service): number | null {
    const file = this.pidFile(service);
    if (!existsSync(file)) return null;
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : null;
  }

  /** SIGKILL one service (a crash, not a stop). */
  kill(service: Service): void {
    const pid = this.pid(service);
    if (pid === null) throw unavailable(`${service} is not running`);
    process.kill(pid, 'SIGKILL');
    rmSync(this.pidFile(service), { force: true });
  }

  /** Starts one service of an existing cluster and waits until it listens. */
  async startService(service: Service): Promise<void> {
    const info = this.requireInfo();
    if (this.pid(service) !== null) return;
    mkdirSync(this.logDir, { recursive: true });
    const out = openSync(path.join(this.logDir, `${service}.log`), 'a');
    const child = spawn(
      path.join(this.binDir, SERVER_BINARY),
      [
        '--root',
        this.stateDir,
        '--config',
        'config',
        '--env',
        'development',
        '--allow-no-auth',
        'start',
        '--service',
        service,
      ],
      { cwd: this.stateDir, detached: true, stdio: ['ignore', out, out] },
    );
    closeSync(out);
    child.unref();
    if (child.pid === undefined) throw unavailable(`${service} did not start`);
    writeFileSync(this.pidFile(service), `${child.pid}\n`);
    const port = service === 'worker' ? info.ports.worker.membership : info.ports[service].grpc;
    const deadline = Date.now() + SERVICE_READY_MS;
    while (!(await listening(port))) {
      if (!isAlive(child.pid)) {
        throw unavailable(`${service} exited while starting; the end of its log:\n${this.logTail(service)}`);
      }
      if (Date.now() > deadline)
        throw unavailable(`${service} did not listen on ${port} within ${SERVICE_READY_MS / 1000} s`);
      await sleep(200);
    }
    this.log(`cluster: ${service} up (pid ${child.pid})`);
  }

  /** SIGTERM, then SIGKILL after 10 s. */
  async stopService(service: Service): Promise<void> {
    const pid = this.pid(service);
    rmSync(this.pidFile(service), { force: true });
    if (pid === null) return;
    await terminate(pid);
    this.log(`cluster: ${service} stopped`);
  }

  /** A fast shutdown (every connection dropped, committed work kept) and a start again. */
  async restartPostgres(): Promise<void> {
    await this.stopPostgres();
    await this.startPostgres();
  }

  /** Each part and its resident memory. */
  status(): { name: string; pid: number | null; rssMiB: number | null }[] {
    const rows = SERVICES.map((name) => {
      const pid = this.pid(name);
      return { name: name as string, pid, rssMiB: pid === null ? null : rssMiB(pid) };
    });
    const pgPid = this.postgresPid();
    rows.push({ name: 'postgres', pid: pgPid, rssMiB: pgPid === null ? null : rssMiB(pgPid) });
    return rows;
  }

  logTail(name: Service | 'postgres', lines = 30): string {
    const file = path.join(this.logDir, `${name}.log`);
    if (!existsSync(file)) return '(no log)';
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** The state dir, ports and the server's config, once; later starts reuse them. */
  private async create(): Promise<ClusterInfo> {
    const existing = this.info();
    if (existing !== null) return existing;
    // 711: PostgreSQL's user must reach its data dir inside; cluster.json and the config stay 600.
    mkdirSync(this.stateDir, { recursive: true, mode: 0o711 });
    const [port, pgPort] = await this.pickPorts();
    const info: ClusterInfo = {
      address: `127.0.0.1:${port}`,
      pgPort,
      ports: {
        frontend: { grpc: port, membership: port + 10 },
        history: { grpc: port + 1, membership: port + 11 },
        matching: { grpc: port + 2, membership: port + 12 },
        worker: { grpc: port + 3, membership: port + 13 },
      },
      httpPort: port + 20,
      password: randomBytes(18).toString('base64url'),
    };
    const configDir = path.join(this.stateDir, 'config');
    mkdirSync(configDir, { recursive: true });
    writeFileSync(
      path.join(configDir, 'development.yaml'),
      serverConfig(info, path.join(configDir, 'dynamicconfig.yaml')),
      {
        mode: 0o600,
      },
    );
    writeFileSync(path.join(configDir, 'dynamicconfig.yaml'), DYNAMIC_CONFIG);
    writeFileSync(this.infoFile, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
    return info;
  }

  /** The frontend's and PostgreSQL's ports; 0 picks a free block (see `freeBlock`). */
  private async pickPorts(): Promise<[number, number]> {
    const port = this.wantedPort === 0 ? await freeBlock() : this.wantedPort;
    const pgPort = this.wantedPgPort === 0 ? (await freePorts(1))[0]! : this.wantedPgPort;
    return [port, pgPort];
  }

  private postgresPid(): number | null {
    const file = path.join(this.pgData, 'postmaster.pid');
    if (!existsSync(file)) return null;
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : null;
  }

  /** Starts PostgreSQL of an existing cluster (initdb on the first start). */
  async startPostgres(): Promise<void> {
    const pg = ensurePostgres(this.log);
    const info = this.requireInfo();
    if (this.postgresPid() !== null) return;
    const asUser = pgUser();
    if (!existsSync(path.join(this.pgData, 'PG_VERSION'))) {
      rmSync(this.pgData, { recursive: true, force: true });
      mkdirSync(this.pgData, { mode: 0o700 });
      const pwFile = path.join(this.stateDir, 'initdb.pw');
      writeFileSync(pwFile, `${info.password}\n`, { mode: 0o600 });
      if (asUser !== null) {
        chownSync(this.pgData, asUser.uid, asUser.gid);
        chownSync(pwFile, asUser.uid, asUser.gid);
      }
      const init = runAs(asUser, path.join(pg.bin, 'initdb'), [
        '-D',
        this.pgData,
        '--username=temporal',
        `--pwfile=${pwFile}`,
        '--auth-host=scram-sha-256',
        '--auth-local=peer',
        '--encoding=UTF8',
        '--locale=C',
      ]);
      rmSync(pwFile, { force: true });
      if (init !== null) throw unavailable(`initdb failed: ${init}`);
    }
    mkdirSync(this.logDir, { recursive: true });
    const logFile = path.join(this.logDir, 'postgres.log');
    if (asUser !== null) {
      closeSync(openSync(logFile, 'a'));
      chownSync(logFile, asUser.uid, asUser.gid);
    }
    const started = runAs(asUser, path.join(pg.bin, 'pg_ctl'), [
      '-D',
      this.pgData,
      '-l',
      logFile,
      '-w',
      '-t',
      '60',
      '-o',
      // Loopback only; its socket in the data dir; room for four services' pools (the default 100 is not).
      `-c listen_addresses=127.0.0.1 -p ${info.pgPort} -c unix_socket_directories=${this.pgData} -c max_connections=200`,
      'start',
    ]);
    if (started !== null) throw unavailable(`PostgreSQL did not start: ${started}\n${this.logTail('postgres')}`);
    this.log(`cluster: PostgreSQL up on 127.0.0.1:${info.pgPort}`);
  }

  /** A fast shutdown: every connection dropped, committed work kept. */
  async stopPostgres(): Promise<void> {
    if (this.postgresPid() === null) return;
    const pg = ensurePostgres(this.log);
    const stopped = runAs(pgUser(), path.join(pg.bin, 'pg_ctl'), [
      '-D',
      this.pgData,
      '-m',
      'fast',
      '-w',
      '-t',
      '60',
      'stop',
    ]);
    if (stopped !== null) throw unavailable(`PostgreSQL did not stop: ${stopped}`);
    this.log('cluster: PostgreSQL stopped');
  }

  /** Creates each database and brings its schema to the server module's version (rerunnable). */
  private async setupSchema(sqlTool: string, info: ClusterInfo): Promise<void> {
    const schemaRoot = path.join(
      await goModCache(),
      `go.temporal.io/server@v${TEMPORAL_SERVER_VERSION}`,
      'schema',
      'postgresql',
      'v12',
    );
    for (const db of DATABASES) {
      const base = [
        '--plugin',
        'postgres12',
        '--endpoint',
        '127.0.0.1',
        '--port',
        String(info.pgPort),
        '--user',
        'temporal',
        '--password',
        info.password,
        '--db',
        db.name,
      ];
      const marker = path.join(this.pgData, `.runfleet-schema-${db.name}`);
      if (!existsSync(marker)) {
        for (const step of [['create'], ['setup-schema', '-v', '0.0']]) {
          const failed = run(sqlTool, [...base, ...step]);
          if (failed !== null && !/already exists/i.test(failed))
            throw unavailable(`${db.name}: ${step[0]} failed: ${failed}`);
        }
      }
      const updated = run(sqlTool, [...base, 'update-schema', '-d', path.join(schemaRoot, db.schema, 'versioned')]);
      if (updated !== null) throw unavailable(`${db.name}: update-schema failed: ${updated}`);
      writeFileSync(marker, '');
    }
    this.log('cluster: schema up to date');
  }

  /** The namespace, then Runfleet's search attributes (the namespace cache answers "not found" for ~10 s). */
  private async setupNamespace(address: string): Promise<void> {
    const connection = await Connection.connect({ address, connectTimeout: 30_000 });
    try {
      await ensureNamespace(connection, this.namespace, this.log);
    } finally {
      await connection.close();
    }
  }
}

/**
 * A first port whose block (port .. port+20, every listener of `create`) is free. Below 32768:
 * the server stores membership ports in a smallint column, so the OS's ephemeral ports are out.
 */
async function freeBlock(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + 10 * Math.floor(Math.random() * 1_200);
    const wanted = [0, 1, 2, 3, 10, 11, 12, 13, 20].map((d) => base + d);
    if ((await Promise.all(wanted.map((p) => isPortFree(p)))).every(Boolean)) return base;
  }
  throw unavailable('found no free block of ports between 20000 and 32000');
}

/** The server's static config: the four services on loopback, PostgreSQL, no archival. */
export function serverConfig(info: ClusterInfo, dynamicConfigFile: string): string {
  const store = (db: string, conns: number): string[] => [
    `      sql:`,
    `        pluginName: "postgres12"`,
    `        databaseName: "${db}"`,
    `        connectAddr: "127.0.0.1:${info.pgPort}"`,
    `        connectProtocol: "tcp"`,
    `        user: "temporal"`,
    `        password: "${info.password}"`,
    `        maxConns: ${conns}`,
    `        maxIdleConns: ${conns}`,
    `        maxConnLifetime: "1h"`,
  ];
  const service = (s: Service): string[] => [
    `  ${s}:`,
    `    rpc:`,
    `      grpcPort: ${info.ports[s].grpc}`,
    `      membershipPort: ${info.ports[s].membership}`,
    `      bindOnLocalHost: true`,
    ...(s === 'frontend' ? [`      httpPort: ${info.httpPort}`] : []),
  ];
  return [
    '# Written by Runfleet (src/server/cluster.ts) for go.temporal.io/server; four processes on PostgreSQL.',
    'log:',
    '  stdout: true',
    '  level: warn',
    'persistence:',
    '  defaultStore: postgres-default',
    '  visibilityStore: postgres-visibility',
    '  numHistoryShards: 4',
    '  datastores:',
    '    postgres-default:',
    // Four processes each open their own pools: 4 x (20 + 5) stays under max_connections 200.
    ...store('temporal', 20),
    '    postgres-visibility:',
    ...store('temporal_visibility', 5),
    'global:',
    '  membership:',
    '    maxJoinDuration: 30s',
    '    broadcastAddress: "127.0.0.1"',
    'services:',
    ...SERVICES.flatMap(service),
    'clusterMetadata:',
    '  enableGlobalNamespace: false',
    '  failoverVersionIncrement: 10',
    '  masterClusterName: "active"',
    '  currentClusterName: "active"',
    '  clusterInformation:',
    '    active:',
    '      enabled: true',
    '      initialFailoverVersion: 1',
    '      rpcName: "frontend"',
    `      rpcAddress: "${info.address}"`,
    `      httpAddress: "${clusterHttpAddress(info)}"`,
    'dcRedirectionPolicy:',
    '  policy: "noop"',
    'publicClient:',
    `  hostPort: "${info.address}"`,
    'dynamicConfigClient:',
    `  filepath: "${dynamicConfigFile}"`,
    '  pollInterval: "10s"',
    '',
  ].join('\n');
}

/** The server's production defaults, but search attributes visible at once after they are added. */
const DYNAMIC_CONFIG = [
  'system.forceSearchAttributesCacheRefreshOnRead:',
  '  - value: true',
  ...Object.entries(SERVER_DYNAMIC_CONFIG).flatMap(([key, value]) => [`${key}:`, `  - value: ${value}`]),
  '',
].join('\n');

export interface ServiceBinaries {
  server: string;
  sql: string;
}

/** `temporal-server` and `temporal-sql-tool` of the pinned version in .tools/bin, built with Go when missing. */
export async function ensureServiceBinaries(opts: {
  projectRoot: string;
  log?: (line: string) => void;
}): Promise<ServiceBinaries> {
  const log = opts.log ?? (() => {});
  const binDir = path.join(opts.projectRoot, TOOLS_BIN_DIR);
  const binaries = { server: path.join(binDir, SERVER_BINARY), sql: path.join(binDir, SQL_BINARY) };
  if (existsSync(binaries.sql) && serverVersionOk(binaries.server)) return binaries;
  const moduleDir = path.join(opts.projectRoot, 'scripts', 'temporal-service');
  mkdirSync(binDir, { recursive: true });
  for (const [pkg, out] of [
    ['go.temporal.io/server/cmd/server', binaries.server],
    ['go.temporal.io/server/cmd/tools/sql', binaries.sql],
  ] as const) {
    log(`cluster: building ${pkg}@v${TEMPORAL_SERVER_VERSION} into ${out} (minutes the first time)`);
    const started = Date.now();
    const failed = await runAsync('go', ['build', '-o', out, pkg], {
      cwd: moduleDir,
      env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' },
    });
    if (failed !== null) {
      throw unavailable(
        `\`go build ${pkg}\` in ${moduleDir} failed after ${Math.round((Date.now() - started) / 1000)} s ` +
          `(Go 1.25 or newer and the Go module proxy are needed):\n${failed}`,
      );
    }
    log(`cluster: built ${path.basename(out)} in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  return binaries;
}

function serverVersionOk(server: string): boolean {
  const r = spawnSync(server, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 && r.stdout.includes(TEMPORAL_SERVER_VERSION);
}

interface PostgresTools {
  bin: string;
}

/** PostgreSQL's server programs, installed from Debian's `postgresql` package when missing. */
export function ensurePostgres(log: (line: string) => void): PostgresTools {
  const found = findPostgres();
  if (found !== null) return found;
  log('cluster: installing PostgreSQL with apt-get');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (run('apt-get', ['install', '-y', '-q', 'postgresql'], { env }) !== null) {
    const updated = run('apt-get', ['update', '-q'], { env });
    if (updated !== null) throw unavailable(`apt-get update failed: ${updated}`);
    const installed = run('apt-get', ['install', '-y', '-q', 'postgresql'], { env });
    if (installed !== null) throw unavailable(`apt-get install postgresql failed: ${installed}`);
  }
  const after = findPostgres();
  if (after === null) throw unavailable('postgresql installed, but no initdb under /usr/lib/postgresql/*/bin');
  return after;
}

function findPostgres(): PostgresTools | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? null : { bin: path.join(root, versions[0], 'bin') };
}

/** PostgreSQL refuses to run as root: as root, it runs as the `postgres` user the package made. */
function pgUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0)
    throw unavailable('running as root, and there is no `postgres` user to run PostgreSQL as');
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

function runAs(user: { uid: number; gid: number } | null, cmd: string, args: string[]): string | null {
  if (user === null) return run(cmd, args);
  return run('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--', cmd, ...args], {
    env: { ...process.env, HOME: '/var/lib/postgresql' },
    cwd: '/',
  });
}

/** null when the command succeeded, else the tail of its output. */
function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000, ...opts });
  if (r.status === 0) return null;
  return (r.error?.message ?? `${r.stderr ?? ''}${r.stdout ?? ''}`).trim().split('\n').slice(-15).join('\n');
}

function runAsync(cmd: string, args: string[], opts: { env: NodeJS.ProcessEnv; cwd: string }): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(cmd, args, { ...opts, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err === null) resolve(null);
      else resolve(`${err.message}\n${stderr}${stdout}`.trim().split('\n').slice(-20).join('\n'));
    });
  });
}

async function goModCache(): Promise<string> {
  const r = spawnSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' });
  if (r.status !== 0 || r.stdout.trim() === '')
    throw unavailable('`go env GOMODCACHE` failed: the schema ships in the Go module cache');
  return r.stdout.trim();
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function terminate(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_GRACE_MS;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

function rssMiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

function unavailable(message: string): RunfleetError {
  return new RunfleetError('ComponentUnavailable', `cluster: ${message}`);
}
