/**
 * The `docker` driver: each task runs in one container of its image, through a Docker-API engine
 * (Podman's service here, Docker elsewhere) on a unix socket. The container runs the same task
 * script as the process driver (`task-script.ts`) with `/bin/sh`, so the step markers, the
 * stop-at-first-failure rule and the exit file are the same; the container's exit code is the
 * task's.
 *
 * Mounts: the task's workspace at `/workspace` (its files stay on the runner; `working_dir` is a
 * directory inside it, checked by the runner before it gets here), and the task's own session dir
 * at `/.runfleet` (the script, the current step, the exit file: the failed step comes from there).
 * Nothing else of the host: both are paths the runner made for this task.
 *
 * Hardened by default (`ContainerPolicy`, from the runner's config): the task runs as an
 * unprivileged user (65534:65534) unless it asks for root and the runner allows it; every
 * capability dropped, root's too; `no-new-privileges` (no setuid way back); a memory limit (swap
 * included) and a pids limit, the task's own or the runner's default, never above the runner's
 * maximum; a CPU limit when the task or the runner names one. A task asking for more is refused (`TaskRefused`) before any container exists. The
 * workspace and session dir are given to the task's user (the runner runs as root to reach the
 * engine's socket), mode 0700.
 *
 * Environment: the task's `env`, minus the names in `dropEnv` (by default the runner's own
 * host-specific variables such as PATH and HOME, which would break the image's defaults; pass
 * another list to keep some). `RUNFLEET_WORKSPACE`, when it names the working directory, becomes
 * `/workspace`.
 *
 * Images: a task's `pull` says when the engine pulls its image: `if-not-present` (the default:
 * only when the engine lacks it), `always` (every task, so a moved tag is followed), or `never`
 * (the engine must have it: the task fails saying so). A private registry's credentials come
 * from the runner's config (`registryAuth`), never from the run file. A pull that fails (no such
 * image, refused credentials, no registry) fails the task with the engine's reason, before any
 * container exists; the task's log says what was pulled.
 *
 * The container outlives the runner process. It is removed once the outcome is known, so a
 * restarted runner finds it (`recover`): still running, it re-attaches; exited, it reads the
 * outcome. Either way the log file gets what the runner missed meanwhile: the engine keeps the
 * container's whole output, and the bytes the log file already has of it are skipped.
 */
import {
  appendFileSync,
  chmodSync,
  chownSync,
  lchownSync,
  existsSync,
  mkdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import type Docker from 'dockerode';
import { formatByteSize, formatCpu } from '../bytes';
import { RunfleetError } from '../errors';
import { sleep } from '../sleep';
import { finished, type Driver, type DriverResult, type DriverRun, type TaskLabels, type TaskUser } from './driver';
import { EXIT_FILE, readCurrentStep, readExitFile, SCRIPT_FILE, STEP_FILE, writeTaskScript } from './task-script';
import { inside } from './workspace';
import { drain, fileSize, logSink, readText, reconcileLog } from './log-sink';
import type { RegistryAuth } from './registry-auth';
import type { PullPolicy } from '../types';

/** Where the task's working directory is mounted in the container. */
export const CONTAINER_WORKDIR = '/workspace';
/** Where the session dir is mounted in the container. */
const CONTAINER_SESSION_DIR = '/.runfleet';
/** The label every container this driver creates carries. */
export const MANAGED_LABEL = 'runfleet.managed';
/** The runner's host-specific variables, left out of a container's environment by default. */
export const DEFAULT_DROP_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TMPDIR', 'PWD', 'HOSTNAME'];
/**
 * Seconds a stopped container gets between TERM (to the script, which passes it to the steps)
 * and KILL: as long as the process driver's grace.
 */
const STOP_GRACE_S = 5;
/** Size of the log file when the container started: what `recover` skips of the engine's log. */
const LOG_OFFSET_FILE = 'log-offset';

/** What a task's container may be and do: the runner's config (`runner.container*`, `runner.allowRoot`). */
export interface ContainerPolicy {
  /** `uid:gid` tasks run as; numeric, so the runner can give it the workspace. */
  user: string;
  /** Whether a task may ask for root in its container (`run_as_root`). */
  allowRoot: boolean;
  /** Memory limit in bytes, swap included: a task's default and the most it may ask for. */
  memory: { default: number; max: number };
  /** Most processes and threads at once: a task's default and the most it may ask for. */
  pids: { default: number; max: number };
  /** CPU in millicores: a task's default (none: no limit) and the most it may ask for. */
  cpu: { default?: number; max: number };
}

/** The policy of a runner whose config says nothing (each value's reason in `src/config.ts`). */
export const DEFAULT_CONTAINER_POLICY: ContainerPolicy = {
  user: '65534:65534',
  allowRoot: false,
  memory: { default: 2 * 2 ** 30, max: 8 * 2 ** 30 },
  pids: { default: 1024, max: 32_768 },
  cpu: { max: 16_000 },
};

export interface DockerDriverOptions {
  /** The engine's API socket (Podman: `/run/podman/podman.sock`). */
  socketPath: string;
  /** This runner and its pool: labels on every container. */
  runner: string;
  pool: string;
  /** The image of tasks that name none. Default: none (such a task fails). */
  defaultImage?: string;
  /** Variables of the task's env not passed to the container. Default `DEFAULT_DROP_ENV`. */
  dropEnv?: readonly string[];
  /** The user, root and limits of tasks' containers. Default `DEFAULT_CONTAINER_POLICY`. */
  policy?: ContainerPolicy;
  /** Credentials for a private registry an image is pulled from (`loadRegistryAuth`). Default: none. */
  registryAuth?: RegistryAuth;
}

export function createDockerDriver(opts: DockerDriverOptions): Driver {
  // Loaded here: dockerode (and its gRPC and SSH stacks) costs tens of milliseconds that every
  // CLI command importing this module's policy helpers would pay.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const DockerClient = require('dockerode') as typeof Docker;
  const docker = new DockerClient({ socketPath: opts.socketPath });
  const dropEnv = new Set(opts.dropEnv ?? DEFAULT_DROP_ENV);
  const policy = opts.policy ?? DEFAULT_CONTAINER_POLICY;

  /** Engine calls, with an absent or dead socket turned into one clear error. */
  async function engine<T>(what: string, call: () => Promise<T>): Promise<T> {
    if (!existsSync(opts.socketPath)) {
      throw new RunfleetError(
        'DriverUnavailable',
        `docker driver: no Docker API socket at ${opts.socketPath} (is the engine running? ` +
          `Podman: podman system service --time=0 unix://${opts.socketPath})`,
      );
    }
    try {
      return await call();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EACCES') {
        throw new RunfleetError(
          'DriverUnavailable',
          `docker driver: the engine at ${opts.socketPath} does not answer (${what}: ${code})`,
        );
      }
      throw err;
    }
  }

  /** Makes sure the engine has `image` as `policy` says, pulling it when it must. */
  async function ensureImage(image: string, policy: PullPolicy, req: DriverRun): Promise<void> {
    if (policy !== 'always') {
      const present = await engine('inspect image', () => docker.getImage(image).inspect()).then(
        () => true,
        (err: unknown) => {
          if (statusOf(err) === 404) return false;
          throw err;
        },
      );
      if (present) return;
      if (policy === 'never') {
        throw new RunfleetError(
          'TaskSpawnFailed',
          `task ${req.labels.task}: image ${image} is not on the engine at ${opts.socketPath}, and its pull policy is never`,
        );
      }
    }
    const credential = opts.registryAuth?.(image);
    appendFileSync(
      req.logFile,
      `==> pulling ${image}${credential ? ` as ${credential.username}` : ''} (pull: ${policy})\n`,
    );
    const started = Date.now();
    try {
      const stream = await engine('pull', () => docker.pull(image, credential ? { authconfig: credential } : {}));
      // The engine reports a failure inside the stream (an `error` item), not always as a status.
      const items = await new Promise<{ error?: string; errorDetail?: { message?: string } }[]>((resolve, reject) =>
        docker.modem.followProgress(stream, (err: Error | null, output: unknown[]) =>
          err ? reject(err) : resolve(output as { error?: string }[]),
        ),
      );
      const failed = items.find((i) => i.error !== undefined || i.errorDetail?.message !== undefined);
      if (failed) throw new Error(failed.errorDetail?.message ?? failed.error);
    } catch (err) {
      if (err instanceof RunfleetError) throw err;
      throw new RunfleetError(
        'TaskSpawnFailed',
        `task ${req.labels.task}: pulling image ${image} failed: ${String((err as Error).message ?? err).trim()}`,
      );
    }
    appendFileSync(req.logFile, `==> pulled ${image} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }

  async function removeContainer(id: string): Promise<void> {
    await docker
      .getContainer(id)
      .remove({ force: true })
      .catch((err: unknown) => {
        if (statusOf(err) !== 404) throw err;
      });
  }

  return {
    name: 'docker',

    async run(req) {
      if (req.signal.aborted) return { exitCode: 130, failedStep: 0, aborted: true };
      const image = req.image ?? opts.defaultImage;
      if (!image) {
        throw new RunfleetError(
          'InvalidRunSpec',
          `task ${req.labels.task} runs on the docker driver but names no image`,
        );
      }
      // Refused before anything is made: nothing to clean up.
      const limits = containerLimits(req, policy);
      await ensureImage(image, req.pull ?? 'if-not-present', req);
      if (req.signal.aborted) return { exitCode: 130, failedStep: 0, aborted: true };
      const workspace = resolve(req.workspace ?? req.cwd);
      const sessionDir = resolve(req.sessionDir);
      mkdirSync(workspace, { recursive: true });
      mkdirSync(resolve(req.cwd), { recursive: true });
      mkdirSync(sessionDir, { recursive: true });
      const workdir = containerWorkdir(workspace, req.cwd, req.labels.task);
      for (const f of [EXIT_FILE, STEP_FILE]) rmSync(join(sessionDir, f), { force: true });
      writeTaskScript(sessionDir, req.steps);
      giveTo(limits.user, [workspace, ...dirsBetween(workspace, req.cwd), sessionDir], req.labels.task);
      if (req.prepare) {
        try {
          await req.prepare(containerUser(limits.user));
        } catch (err) {
          takeBack(workspace);
          throw err;
        }
      }

      const env = Object.entries(req.env)
        .filter(([name]) => !dropEnv.has(name))
        .map(([name, value]) => `${name}=${PATH_VARIABLES.has(name) ? inContainer(workspace, value) : value}`);
      const container = await engine('create', () =>
        docker.createContainer({
          Image: image,
          Cmd: ['/bin/sh', `${CONTAINER_SESSION_DIR}/${SCRIPT_FILE}`],
          WorkingDir: workdir,
          User: limits.user,
          Env: env,
          Labels: containerLabels(req.labels),
          AttachStdout: true,
          AttachStderr: true,
          Tty: false,
          HostConfig: {
            Binds: [`${workspace}:${CONTAINER_WORKDIR}`, `${sessionDir}:${CONTAINER_SESSION_DIR}`],
            CapDrop: ['ALL'],
            SecurityOpt: ['no-new-privileges'],
            Privileged: false,
            Memory: limits.memory,
            // Equal to Memory: no swap on top of the limit.
            MemorySwap: limits.memory,
            PidsLimit: limits.pids,
            ...(limits.cpu !== undefined ? { NanoCpus: limits.cpu * 1_000_000 } : {}),
          },
        }),
      ).catch((err: unknown) => {
        // Removed between ensureImage and here (an operator's prune): say so.
        if (statusOf(err) !== 404) throw err;
        throw new RunfleetError(
          'TaskSpawnFailed',
          `task ${req.labels.task}: image ${image} is not on the engine at ${opts.socketPath} (${(err as Error).message.trim()})`,
        );
      });
      let started = false;
      let settled = false;
      const out = logSink(req.logFile, 0);
      try {
        writeFileSync(join(sessionDir, LOG_OFFSET_FILE), String(fileSize(req.logFile)));
        // Attached before start: nothing the task prints is missed.
        const stream = await container.attach({ stream: true, stdout: true, stderr: true });
        container.modem.demuxStream(stream, out.writable, out.writable);
        const ended = streamEnded(stream);
        await container.start();
        started = true;
        req.onStarted?.({ driver: 'docker', containerId: container.id });

        const onAbort = () => {
          void stopContainer(container);
        };
        req.signal.addEventListener('abort', onAbort, { once: true });
        // Aborted while the engine was starting it (its output may already be in the log).
        if (req.signal.aborted) onAbort();
        let status: number;
        try {
          status = await waitExit(container, ended);
        } finally {
          req.signal.removeEventListener('abort', onAbort);
        }
        await drain(ended);
        const result = outcome(sessionDir, status, req.signal.aborted);
        settled = true;
        await req.collect?.(containerUser(limits.user), result);
        return result;
      } finally {
        out.close();
        // Done, or never started: the container has nothing more to tell. (After an engine error
        // mid-task it stays, still running, for `recover`.)
        if (settled || !started) {
          await removeContainer(container.id).catch(() => undefined);
          takeBack(workspace);
        }
      }
    },

    async recover(session, signal) {
      const sessionDir = resolve(session.sessionDir);
      const id = session.handle?.containerId ?? (await engine('list', () => findContainer(docker, session.labels)));
      const info =
        id === undefined
          ? undefined
          : await engine('inspect', () => docker.getContainer(id).inspect()).catch((err: unknown) => {
              if (statusOf(err) === 404) return undefined;
              throw err;
            });
      if (!info) {
        // Removed after it ended (the runner died before recording the outcome): the exit file says.
        const done = readExitFile(sessionDir);
        if (done) return finished(done.exitCode, done.failedStep, false, done.finishedAt);
        return {
          state: 'vanished',
          reason: `task ${session.labels.task} (attempt ${session.labels.attempt}) of ${session.labels.run}: its container ${id ?? '(never recorded)'} is gone and left no exit file`,
        };
      }
      const container = docker.getContainer(info.Id);
      try {
        if (info.State.Status === 'created') {
          return { state: 'vanished', reason: `container ${info.Id} was created but never started` };
        }
        const running = info.State.Running || info.State.Status === 'paused';
        // What the log file has of this container's output; the rest comes from the engine's log.
        const offsetText = readText(join(sessionDir, LOG_OFFSET_FILE));
        const have = offsetText === null ? null : Math.max(0, fileSize(session.logFile) - Number(offsetText));
        if (running) writeFileSync(session.logFile, '==> runner restarted: re-attached\n', { flag: 'a' });
        const out = logSink(session.logFile, have ?? 0);
        let status = info.State.ExitCode;
        const onAbort = () => {
          void stopContainer(container);
        };
        try {
          if (running) {
            if (signal.aborted) onAbort();
            else signal.addEventListener('abort', onAbort, { once: true });
            // From the start when we know how much we have, else only what comes from now on.
            const stream =
              have === null
                ? await container.attach({ stream: true, stdout: true, stderr: true })
                : await container.logs({ follow: true, stdout: true, stderr: true });
            container.modem.demuxStream(stream, out.writable, out.writable);
            const ended = streamEnded(stream);
            status = await waitExit(container, ended);
            await drain(ended);
          }
          out.close();
          // Podman's followed log repeats its last lines when the container exits: the engine's
          // whole log, read once it has ended, says what the file must hold.
          if (have !== null) {
            const full = demuxBuffer(await container.logs({ follow: false, stdout: true, stderr: true }));
            reconcileLog(session.logFile, full.subarray(Math.min(have, full.length)), out.written());
          }
        } finally {
          signal.removeEventListener('abort', onAbort);
          out.close();
        }
        const result = outcome(sessionDir, status, running && signal.aborted);
        const finishedAt = exitTime(sessionDir) ?? (running ? new Date().toISOString() : info.State.FinishedAt);
        return finished(result.exitCode, result.failedStep, result.aborted, finishedAt);
      } finally {
        await removeContainer(info.Id).catch(() => undefined);
      }
    },
    async sweep({ runners, keep }) {
      const containers = await engine('list', () =>
        docker.listContainers({ all: true, filters: { label: [`${MANAGED_LABEL}=1`] } }),
      );
      let removed = 0;
      for (const c of containers) {
        const labels = labelsOf(c.Labels);
        if (!labels || !runners.includes(labels.runner) || keep(labels)) continue;
        await removeContainer(c.Id);
        removed++;
      }
      return removed;
    },
  };
}

/** The user and limits of a task's container; `TaskRefused` when it asks for more than the policy allows. */
export function containerLimits(
  req: Pick<DriverRun, 'resources' | 'runAsRoot' | 'labels'>,
  policy: ContainerPolicy,
): { user: string; memory: number; pids: number; cpu?: number } {
  const task = req.labels.task;
  if (req.runAsRoot && !policy.allowRoot) {
    throw new RunfleetError(
      'TaskRefused',
      `task ${task} asks for root in its container (run_as_root) and runner "${req.labels.runner}" does not allow it (runner.allowRoot)`,
    );
  }
  const memory = req.resources?.memory ?? policy.memory.default;
  if (memory > policy.memory.max) {
    throw new RunfleetError(
      'TaskRefused',
      `task ${task} asks for resources.memory ${formatByteSize(memory)}; runner "${req.labels.runner}" allows at most ${formatByteSize(policy.memory.max)} (runner.containerMemoryMax)`,
    );
  }
  const pids = req.resources?.pids ?? policy.pids.default;
  if (pids > policy.pids.max) {
    throw new RunfleetError(
      'TaskRefused',
      `task ${task} asks for resources.pids ${pids}; runner "${req.labels.runner}" allows at most ${policy.pids.max} (runner.containerPidsMax)`,
    );
  }
  const cpu = req.resources?.cpu ?? policy.cpu.default;
  if (cpu !== undefined && cpu > policy.cpu.max) {
    throw new RunfleetError(
      'TaskRefused',
      `task ${task} asks for resources.cpu ${formatCpu(cpu)}; runner "${req.labels.runner}" allows at most ${formatCpu(policy.cpu.max)} (runner.containerCpuMax)`,
    );
  }
  return { user: req.runAsRoot ? '0:0' : policy.user, memory, pids, ...(cpu !== undefined ? { cpu } : {}) };
}

/**
 * The container's user, as what is done in the task's name on the host runs (restores, archives):
 * giveTo made sure a runner that is not root is that user already.
 */
function containerUser(user: string): TaskUser {
  const [uid, gid] = user.split(':').map(Number) as [number, number];
  return process.getuid?.() === 0 ? { uid, gid } : undefined;
}

/** The runner's variables that name a path in the workspace: the container sees it at `/workspace`. */
const PATH_VARIABLES = new Set(['RUNFLEET_WORKSPACE', 'RUNFLEET_OUTPUT']);

/** `value`, a path of the runner's, as the container sees it when it is in the workspace. */
function inContainer(workspace: string, value: string): string {
  const rel = relative(workspace, resolve(value));
  if (rel === '') return CONTAINER_WORKDIR;
  return rel.startsWith('..') || isAbsolute(rel) ? value : `${CONTAINER_WORKDIR}/${rel.split(sep).join('/')}`;
}

/** The container's working directory for `cwd`, which must be the workspace or inside it. */
function containerWorkdir(workspace: string, cwd: string, task: string): string {
  const root = realpathSync(workspace);
  const real = realpathSync(cwd);
  if (!inside(root, real)) {
    throw new RunfleetError('TaskRefused', `task ${task}: working directory ${real} is outside its workspace ${root}`);
  }
  return posix.join(CONTAINER_WORKDIR, ...relative(root, real).split('/'));
}

/** The directories from below `workspace` down to `cwd` (none when they are the same). */
function dirsBetween(workspace: string, cwd: string): string[] {
  const parts = relative(realpathSync(workspace), realpathSync(cwd))
    .split('/')
    .filter((p) => p !== '');
  return parts.map((_, i) => join(realpathSync(workspace), ...parts.slice(0, i + 1)));
}

/**
 * Gives the task's user the directories it writes (the workspace, the session dir), readable by
 * it alone. A runner that is not root can only do so for its own uid: another user is refused
 * with what to change, rather than a task that fails on its first write.
 */
function giveTo(user: string, dirs: string[], task: string): void {
  const [uid, gid] = user.split(':').map(Number) as [number, number];
  const self = process.getuid?.();
  if (self !== 0 && self !== uid) {
    throw new RunfleetError(
      'TaskSpawnFailed',
      `task ${task}: the docker driver runs tasks as ${user} and this runner (uid ${self}) cannot give that user the workspace; run the runner as root or set runner.containerUser to ${self}:${process.getgid?.()}`,
    );
  }
  for (const dir of dirs) {
    if (self === 0) chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
  }
}

/**
 * The workspace is the runner's again once the task is over (its files stay as they are, for the
 * log retention and a retry): the container's user is shared by every docker task of the runner,
 * and by `nobody` on the host.
 */
function takeBack(workspace: string): void {
  const self = process.getuid?.();
  if (self !== 0) return;
  try {
    lchownSync(workspace, 0, 0);
  } catch {
    // Gone already: nothing to take back.
  }
}

/** The labels of a task's container. */
export function containerLabels(labels: TaskLabels): Record<string, string> {
  return {
    'runfleet.run': labels.run,
    'runfleet.task': labels.task,
    'runfleet.attempt': String(labels.attempt),
    'runfleet.runner': labels.runner,
    'runfleet.pool': labels.pool,
    [MANAGED_LABEL]: '1',
  };
}

function labelsOf(l: Record<string, string> | undefined): TaskLabels | null {
  const run = l?.['runfleet.run'];
  const task = l?.['runfleet.task'];
  const runner = l?.['runfleet.runner'];
  if (!l || run === undefined || task === undefined || runner === undefined) return null;
  return { run, task, attempt: Number(l['runfleet.attempt']), runner, pool: l['runfleet.pool'] ?? '' };
}

/** A task's container found by its labels (the runner died before recording the id). */
async function findContainer(docker: Docker, labels: TaskLabels): Promise<string | undefined> {
  const all = await docker.listContainers({ all: true, filters: { label: [`${MANAGED_LABEL}=1`] } });
  const want = containerLabels(labels);
  return all.find((c) => Object.entries(want).every(([k, v]) => c.Labels[k] === v))?.Id;
}

/** TERM to the script (which passes it to the steps), KILL after the grace; kill if stop fails. */
async function stopContainer(container: Docker.Container): Promise<void> {
  try {
    await container.stop({ t: STOP_GRACE_S });
  } catch (err) {
    if (statusOf(err) === 304 || statusOf(err) === 404) return; // stopped already, or gone
    await container.kill().catch(() => undefined);
  }
}

function outcome(sessionDir: string, status: number, aborted: boolean): DriverResult {
  const recorded = readExitFile(sessionDir);
  if (recorded) return { exitCode: recorded.exitCode, failedStep: recorded.failedStep, aborted };
  // Killed before the script could write its outcome.
  return { exitCode: status, failedStep: readCurrentStep(sessionDir) ?? 0, aborted };
}

function exitTime(sessionDir: string): string | null {
  return readExitFile(sessionDir)?.finishedAt ?? null;
}

/**
 * The container's exit code. Podman's `wait` answers some 0.4 s after the container exited; the
 * output stream ends at once, so on its end we ask `inspect` too, and take the first answer.
 */
async function waitExit(container: Docker.Container, ended: Promise<void>): Promise<number> {
  let settled = false;
  const waited = container.wait().then((r: { StatusCode: number }) => r.StatusCode);
  const inspected = ended.then(async () => {
    // Until `wait` answers: a stream can also end early (the engine closed it).
    while (!settled) {
      const info = await container.inspect();
      if (!info.State.Running && info.State.Status !== 'created') return info.State.ExitCode;
      await sleep(100);
    }
    return waited;
  });
  try {
    return await Promise.race([waited, inspected]);
  } finally {
    settled = true;
    // The loser may fail once the container is removed: nobody waits for it.
    waited.catch(() => undefined);
    inspected.catch(() => undefined);
  }
}

/** Resolves when the container's output stream ends (often before `wait` answers). */
function streamEnded(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
}

/** Docker's multiplexed log format (8-byte frame headers) to the bare output. */
function demuxBuffer(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at + 8 <= buf.length) {
    const size = buf.readUInt32BE(at + 4);
    parts.push(buf.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return Buffer.concat(parts);
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}
