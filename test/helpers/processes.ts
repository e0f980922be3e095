/**
 * Runfleet pieces as real OS processes, started through the `runfleet` CLI, so tests can
 * kill -9 them. Every process started here is killed by `killAll()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import { testRunnerAdmin } from './harness';
import { TEST_OPERATOR_KEY_FILE } from './operator-key';
import type { RunnerSettings } from '../../workflows/runner-messages';
import { until } from './until';

export const projectRoot = resolve(__dirname, '..', '..');
export const runfleetBin = join(projectRoot, 'bin', 'runfleet');

export interface Proc {
  child: ChildProcess;
  logFile: string;
  output(): string;
  /** Resolves with the exit code (or 128+signal). */
  exited: Promise<number>;
  kill(signal?: NodeJS.Signals): void;
}

const started: Proc[] = [];

/** What a finished `runfleet` command printed, and its exit code. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** How long a command's pipes may stay open after it exits (a daemon it started may hold them). */
const PIPE_GRACE_MS = 2_000;

/**
 * Runs `runfleet <args>` to its end, against the harness `h` (its server and control queue), with
 * `env` on top. Resolves once its output is all read: on `close`, not on `exit`, which may come
 * before the last of stdout is (a test once parsed an empty stdout so).
 */
export function runCli(
  args: string[],
  h: { address: string; controlQueue: string },
  env: NodeJS.ProcessEnv = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [runfleetBin, ...args], {
      cwd: projectRoot,
      env: { ...process.env, TEMPORAL_ADDRESS: h.address, RUNFLEET_CONTROL_TASK_QUEUE: h.controlQueue, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let code = -1;
    let grace: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(grace);
      resolve({ code, stdout, stderr });
    };
    child.on('exit', (c, signal) => {
      code = c ?? (signal ? 128 : -1);
      grace = setTimeout(done, PIPE_GRACE_MS);
    });
    child.on('close', done);
  });
}

/**
 * A data key file that never exists: processes started here run in clear, like the harness,
 * unless a test passes `RUNFLEET_KEY_FILE` (the checkout's own `.runfleet/keys` stays out of tests).
 */
export const NO_KEY_FILE = join(projectRoot, '.runfleet', 'test', 'no-such-dir', 'runfleet.keys');

export function startRunfleet(
  args: string[],
  opts: {
    env: Record<string, string>;
    logFile: string;
    /** A test host's namespace (`test/helpers/netns.ts`). */ netns?: string;
  },
): Proc {
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  // `ip netns exec` enters the namespace and execs node: the pid is node's either way.
  const [cmd, ...argv] = opts.netns
    ? ['ip', 'netns', 'exec', opts.netns, process.execPath, runfleetBin, ...args]
    : [process.execPath, runfleetBin, ...args];
  const child = spawn(cmd as string, argv, {
    cwd: projectRoot,
    env: {
      ...process.env,
      RUNFLEET_KEY_FILE: NO_KEY_FILE,
      // The suite's operator key: `runfleet worker` trusts it, `runfleet runner ...` signs with it.
      RUNFLEET_OPERATOR_KEY_FILE: TEST_OPERATOR_KEY_FILE,
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number>((res) => {
    child.once('exit', (code, signal) => res(code ?? (signal === 'SIGKILL' ? 137 : 143)));
  });
  const proc: Proc = {
    child,
    logFile: opts.logFile,
    output: () => {
      try {
        return readFileSync(opts.logFile, 'utf8');
      } catch {
        return '';
      }
    },
    exited,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
  started.push(proc);
  return proc;
}

export async function killAll(): Promise<void> {
  for (const p of started.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
}

export interface RunnerProcOptions {
  address: string;
  name: string;
  /** Only the fleet's answer counts; kept for the log file name. */
  pool: string;
  dataDir: string;
  /** Registration token (`registerRunner`); without it the runner must already be registered. */
  token?: string;
  /** A local cap on slots (the fleet's settings decide otherwise). */
  slots?: number;
  healthPort?: number;
  args?: string[];
  env?: Record<string, string>;
  /** Runs it on a test host of its own (`test/helpers/netns.ts`); `address` is then the host's relay. */
  netns?: string;
}

/**
 * Creates a runner in the registry (`runner create`) and returns its registration token. The
 * registry workflow runs on `controlQueue`, which a control worker must serve.
 */
export async function registerRunner(
  client: Client,
  controlQueue: string,
  o: { name: string; pool: string; settings?: Partial<RunnerSettings>; temporary?: boolean },
): Promise<string> {
  const admin = testRunnerAdmin(client, controlQueue);
  const issued = await admin.create({
    name: o.name,
    pool: o.pool,
    settings: { slots: 2, ...o.settings },
    ...(o.temporary ? { temporary: true } : {}),
    by: 'test',
  });
  return issued.token;
}

export function startRunnerProcess(o: RunnerProcOptions): Proc {
  return startRunfleet(
    [
      'runner',
      'serve',
      '--name',
      o.name,
      '--state-dir',
      o.dataDir,
      ...(o.slots !== undefined ? ['--slots', String(o.slots)] : []),
      ...(o.healthPort !== undefined ? ['--health-port', String(o.healthPort)] : []),
      ...(o.args ?? []),
    ],
    {
      env: { TEMPORAL_ADDRESS: o.address, ...(o.token ? { RUNFLEET_RUNNER_TOKEN: o.token } : {}), ...o.env },
      logFile: join(o.dataDir, '..', `${o.name}.log`),
      ...(o.netns ? { netns: o.netns } : {}),
    },
  );
}

export function startControlProcess(o: {
  address: string;
  controlQueue: string;
  logFile: string;
  /** Default true, as in production; false where the runners are in-process ones without a registry record. */
  requireRunnerProofs?: boolean;
  env?: Record<string, string>;
  /** Runs it on a test host of its own (`test/helpers/netns.ts`); `address` is then the host's relay. */
  netns?: string;
}): Proc {
  return startRunfleet(['worker'], {
    env: {
      TEMPORAL_ADDRESS: o.address,
      RUNFLEET_CONTROL_TASK_QUEUE: o.controlQueue,
      ...(o.requireRunnerProofs === false ? { RUNFLEET_REQUIRE_RUNNER_PROOFS: '0' } : {}),
      ...o.env,
    },
    logFile: o.logFile,
    ...(o.netns ? { netns: o.netns } : {}),
  });
}

/**
 * `runner serve` of `name` with its state directory in `<root>/runners/<name>` (the parent made
 * here; the runner makes its own, and a purge removes it).
 */
export function serveRunner(o: Omit<RunnerProcOptions, 'dataDir'> & { root: string }): Proc {
  const { root, ...rest } = o;
  return startRunnerProcess({ ...rest, dataDir: runnerStateDir(root, o.name) });
}

/** Where `serveRunner` keeps the state of runner `name`. */
export function runnerStateDir(root: string, name: string): string {
  const dir = join(root, 'runners', name);
  mkdirSync(join(root, 'runners'), { recursive: true });
  return dir;
}

/**
 * Waits until a runner process said its health address (in `output()`, which may start where a
 * restarted runner's own lines do) and its `/readyz` answers 200: registered, connected, enabled.
 */
export async function untilRunnerReady(output: () => string): Promise<void> {
  const port = await until(
    'the health port',
    () => /health: http:\/\/127\.0\.0\.1:(\d+)\/livez/.exec(output())?.[1],
    60_000,
  );
  await until('the runner ready', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 60_000);
}
