/**
 * A local Docker-API engine for the `docker` driver's tests (and `scripts/ensure-podman.ts`): Podman's
 * compatible service (RECIPES.md, "A Docker-API engine"). No image can be pulled here, so the
 * task image is built from Debian's static busybox.
 *
 * Podman reads its settings from a project-local `containers.conf` (named by `CONTAINERS_CONF`
 * on every podman command) so that nothing under /etc changes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  copyFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { RunfleetError } from '../../src/errors';

/** The image tasks run in by default; built locally, never pulled. */
export const BUSYBOX_IMAGE = 'localhost/runfleet-busybox:latest';

/**
 * The sandbox forbids raising resource limits and has hybrid cgroups: Podman needs fixed ulimits,
 * runc with cgroupfs, no network namespace setup, and a file events log (no journald).
 */
export const CONTAINERS_CONF = `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
netns = "none"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`;

const CATATONIT = '/usr/libexec/podman/catatonit';

/** Applets linked in the busybox image: what task scripts and tests use. */
const BUSYBOX_APPLETS = [
  'sh',
  'echo',
  'sleep',
  'cat',
  'ls',
  'env',
  'true',
  'false',
  'date',
  'printf',
  'mkdir',
  'rm',
  'cp',
  'mv',
  'touch',
  'pwd',
  'test',
  '[',
  'grep',
  'sed',
  'head',
  'tail',
  'wc',
  'kill',
  'id',
  'uname',
  'mktemp',
  'tr',
  'seq',
  'basename',
  'dirname',
  'chmod',
  'ps',
];

export interface EnsurePodmanOptions {
  projectRoot: string;
  log?: (line: string) => void;
}

export interface PodmanSetup {
  /** The `containers.conf` every podman command must be given through `CONTAINERS_CONF`. */
  confFile: string;
  /** What ensurePodman did, in one line. */
  summary: string;
}

/** `<projectRoot>/.tools/podman/containers.conf`. */
export function podmanConfFile(projectRoot: string): string {
  return path.join(projectRoot, '.tools', 'podman', 'containers.conf');
}

/** The environment for podman commands: ours plus `CONTAINERS_CONF`. */
export function podmanEnv(confFile: string): NodeJS.ProcessEnv {
  return { ...process.env, CONTAINERS_CONF: confFile };
}

/**
 * Installs podman (apt) when missing, writes the project's containers.conf, and imports the
 * busybox image when podman does not have it. Throws `ComponentUnavailable` saying what failed.
 */
export function ensurePodman(opts: EnsurePodmanOptions): PodmanSetup {
  const log = opts.log ?? (() => undefined);
  const done: string[] = [];
  // catatonit: `podman run --init` (compose's `init: true`) runs it as the container's PID 1.
  if (!onPath('podman') || !onPath('runc') || !existsSync('/bin/busybox') || !existsSync(CATATONIT)) {
    log('installing podman, runc, catatonit and busybox-static with apt-get');
    const pkgs = ['install', '-y', '--no-install-recommends', 'podman', 'runc', 'catatonit', 'busybox-static'];
    const first = runQuiet('apt-get', pkgs, { DEBIAN_FRONTEND: 'noninteractive' });
    if (first !== null) {
      // A bare machine has no package lists yet: "Unable to locate package".
      log('apt-get install failed; running apt-get update and trying again');
      ensureOk('apt-get', ['update'], {});
      ensureOk('apt-get', pkgs, { DEBIAN_FRONTEND: 'noninteractive' });
    }
    done.push('installed podman');
  }
  const confFile = podmanConfFile(opts.projectRoot);
  mkdirSync(path.dirname(confFile), { recursive: true });
  if (!existsSync(confFile) || readFileSync(confFile, 'utf8') !== CONTAINERS_CONF) {
    writeFileSync(confFile, CONTAINERS_CONF);
    done.push(`wrote ${path.relative(opts.projectRoot, confFile)}`);
  }
  const env = { CONTAINERS_CONF: confFile };
  if (runQuiet('podman', ['image', 'exists', BUSYBOX_IMAGE], env) !== null) {
    log(`building ${BUSYBOX_IMAGE} from /bin/busybox`);
    buildBusyboxImage(env);
    done.push(`imported ${BUSYBOX_IMAGE}`);
  }
  const version = spawnSync('podman', ['--version'], { encoding: 'utf8', env: podmanEnv(confFile) }).stdout.trim();
  const summary = `${version || 'podman'}: ${done.length > 0 ? done.join(', ') : 'ready'} (CONTAINERS_CONF=${confFile})`;
  return { confFile, summary };
}

function buildBusyboxImage(env: Record<string, string>): void {
  const work = mkdtempSync(path.join(tmpdir(), 'runfleet-busybox-'));
  try {
    const bin = path.join(work, 'rootfs', 'bin');
    mkdirSync(bin, { recursive: true });
    for (const dir of ['tmp', 'workspace', 'etc', 'proc', 'sys', 'dev']) mkdirSync(path.join(work, 'rootfs', dir));
    copyFileSync('/bin/busybox', path.join(bin, 'busybox'));
    for (const applet of BUSYBOX_APPLETS) symlinkSync('busybox', path.join(bin, applet));
    // `id`, `ps` and friends want these; an empty image has none.
    writeFileSync(path.join(work, 'rootfs', 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(path.join(work, 'rootfs', 'etc', 'group'), 'root:x:0:\n');
    const tar = path.join(work, 'img.tar');
    ensureOk('tar', ['-C', path.join(work, 'rootfs'), '-cf', tar, '.'], {});
    ensureOk('podman', ['import', '--change', 'CMD ["/bin/sh"]', tar, BUSYBOX_IMAGE], env);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Whether `cmd` is on the PATH. */
export function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

/** Runs a command; null when it succeeded, else the tail of its output. */
function runQuiet(cmd: string, args: string[], env: Record<string, string>): string | null {
  // apt on a cold cache, or podman's first start (storage setup): minutes at worst.
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000, env: { ...process.env, ...env } });
  if (r.status === 0) return null;
  return r.error?.message ?? `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').slice(-10).join('\n');
}

function ensureOk(cmd: string, args: string[], env: Record<string, string>): void {
  const failed = runQuiet(cmd, args, env);
  if (failed !== null)
    throw new RunfleetError('ComponentUnavailable', `podman setup failed (${cmd} ${args.join(' ')}): ${failed}`);
}

export interface PodmanService {
  socketPath: string;
  stop(): Promise<void>;
}

export interface StartPodmanOptions {
  /** The unix socket the service listens on (its directory is created). */
  socketPath: string;
  /** The service's stdout and stderr; default `<socket dir>/podman-service.log`. */
  logFile?: string;
  /** The project whose `.tools/podman/containers.conf` to use; default: this checkout. */
  projectRoot?: string;
  /** How long to wait for the API to answer. Default 20 s (its first start sets up storage). */
  readyTimeoutMs?: number;
  /** An engine of its own: image storage under this dir (`--root`, `--runroot`), empty at first. */
  storageDir?: string;
  /** The registries.conf the service reads (`CONTAINERS_REGISTRIES_CONF`): an insecure test registry. */
  registriesConf?: string;
}

/**
 * Starts `podman system service` on `socketPath` (ensuring podman first) and waits until the
 * Docker API answers a ping. Throws `ComponentUnavailable` naming the service log when it does not.
 */
export async function startPodmanService(opts: StartPodmanOptions): Promise<PodmanService> {
  const projectRoot = opts.projectRoot ?? path.resolve(__dirname, '..', '..');
  const { confFile } = ensurePodman({ projectRoot });
  mkdirSync(path.dirname(opts.socketPath), { recursive: true });
  const logFile = opts.logFile ?? path.join(path.dirname(opts.socketPath), 'podman-service.log');
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // --time=0: the service never exits on its own for being idle.
    const storage = opts.storageDir
      ? ['--root', path.join(opts.storageDir, 'root'), '--runroot', path.join(opts.storageDir, 'run')]
      : [];
    child = spawn('podman', [...storage, 'system', 'service', '--time=0', `unix://${opts.socketPath}`], {
      env: {
        ...podmanEnv(confFile),
        ...(opts.registriesConf ? { CONTAINERS_REGISTRIES_CONF: opts.registriesConf } : {}),
      },
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = signal ?? String(code);
  });
  child.once('error', (err) => {
    exited = err.message;
  });
  const docker = new Docker({ socketPath: opts.socketPath });
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (exited !== undefined)
      throw new RunfleetError('ComponentUnavailable', `podman system service exited (${exited}); see ${logFile}`);
    if (existsSync(opts.socketPath)) {
      try {
        await docker.ping();
        break;
      } catch {
        // listening soon
      }
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new RunfleetError(
        'ComponentUnavailable',
        `podman system service did not answer on ${opts.socketPath} in time; see ${logFile}`,
      );
    }
    await sleep(100);
  }
  return {
    socketPath: opts.socketPath,
    async stop() {
      if (exited !== undefined) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      // Podman finishes in-flight API calls on TERM; a hung one must not hold the test run.
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/**
 * A Podman API service for one test file, on a socket in a temporary dir. Podman is installed
 * and its busybox image built when missing (`ensurePodman`); if that or the service fails, the
 * error says why and the tests fail (never skip).
 */
export interface TestPodman {
  socketPath: string;
  docker: Docker;
  /** A temporary dir for the file's workspaces, logs and session dirs. */
  dir: string;
  stop(): Promise<void>;
}

export async function startTestPodman(
  opts: Pick<StartPodmanOptions, 'registriesConf'> & { cleanEngine?: boolean } = {},
): Promise<TestPodman> {
  // Short: a unix socket path must fit in 108 bytes.
  const dir = mkdtempSync(path.join(tmpdir(), 'rf-podman-'));
  let service: PodmanService;
  try {
    service = await startPodmanService({
      socketPath: path.join(dir, 'podman.sock'),
      logFile: path.join(dir, 'service.log'),
      ...(opts.cleanEngine ? { storageDir: path.join(dir, 'storage') } : {}),
      ...(opts.registriesConf ? { registriesConf: opts.registriesConf } : {}),
    });
  } catch (err) {
    throw new Error(`Podman is required for the docker driver tests and could not start: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return {
    socketPath: service.socketPath,
    docker: new Docker({ socketPath: service.socketPath }),
    dir,
    async stop() {
      await service.stop();
      if (opts.cleanEngine) {
        // The engine's own storage is mounted (overlay): let podman undo what it made first.
        const storage = path.join(dir, 'storage');
        const roots = ['--root', path.join(storage, 'root'), '--runroot', path.join(storage, 'run')];
        spawnSync('podman', [...roots, 'system', 'reset', '--force'], {
          env: podmanEnv(podmanConfFile(path.resolve(__dirname, '..', '..'))),
          stdio: 'ignore',
          timeout: 60_000,
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
