/**
 * The `process` driver: a task's steps run under one detached supervisor in its own process
 * group, with stdout and stderr appended to the task's log file. The supervisor is the native
 * one (`native/supervise.c`, when built: `native-supervisor.ts`) or `/bin/sh` running the
 * generated task script (`task-script.ts`); both keep the same files in the session dir. The supervisor does not depend on the runner process: a
 * runner killed mid-task and started again learns the outcome from the exit file the
 * supervisor writes into the session dir (`recover`).
 *
 * Cancel or timeout kills the whole group (TERM, then KILL after a grace period); anything a
 * step left behind in the group is killed when the task ends.
 *
 * Trust: on a root runner each task runs as a user of its own (`task-user.ts`): it owns its
 * workspace while it runs, reaches nothing else of the state dir, and whatever it leaves running
 * under its id is killed when it ends. A runner that is not root cannot do this and says so.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { sleep } from '../sleep';
import { probeNativeSupervisor } from './native-supervisor';
import { createSpawner, STARTER_GONE, type ProcessExit, type Spawner } from './spawner';
import type { Driver, DriverResult, Recovered, SessionRecord, TaskLabels } from './driver';
import {
  ABANDONED_FILE,
  EXIT_FILE,
  readCurrentStep,
  readExitFile,
  type ExitRecord,
  STEP_FILE,
  SUPERVISOR_FILES,
  writeStepsFile,
  writeTaskScript,
} from './task-script';
import {
  giveWorkspace,
  Reaper,
  resolveTaskUsers,
  secureStateDir,
  takeWorkspaceBack,
  TaskUserPool,
  type TaskUsers,
} from './task-user';

// The old home of these types; activities and workers import them from here until they move.
export type { Driver, DriverResult, DriverRun } from './driver';

/** How long a TERM-ed process group gets before KILL. */
const KILL_GRACE_MS = 5_000;
/** How often `recover` looks at a supervisor it is not the parent of (it cannot wait for it). */
const POLL_MS = 250;
/** Labels of the task a session dir belongs to, for `sweep`. */
const LABELS_FILE = 'labels.json';
/** The user a task runs as and the workspace it was given, for `recover` and `sweep`. */
const USER_FILE = 'user.json';

interface TaskUserRecord {
  uid: number;
  /** The workspace given to the task (taken back when it ends); null when it was not ours to give. */
  workspace: string | null;
}

export interface ProcessDriverOptions {
  /** The shell that runs the task script when there is no native supervisor. Default `/bin/sh`. */
  shell?: string;
  /**
   * The native supervisor's path, or null for the task script under `shell`. Default: the
   * build's (`native-supervisor.ts`) when it runs here, else the script (said through `log`).
   */
  supervisor?: string | null;
  /**
   * The folder holding the session dirs (`SessionStore.root`), which `sweep` looks through.
   * Without it `sweep` removes nothing.
   */
  sessionsDir?: string;
  /**
   * `runner.taskUids`: the user ids tasks run as when the runner is root, `FIRST-LAST`; `none`
   * runs them as the runner's own user. Default: 1000 ids chosen by the state dir
   * (`task-user.ts`). The state dir is the parent of `sessionsDir`.
   */
  taskUids?: string;
  /** Told once, now, when tasks will run as the runner's own user (trusted code only). */
  log?: (line: string) => void;
  /** How tasks run, decided by the caller (tests). Default: from `taskUids` and who we are. */
  users?: TaskUsers;
  /** What starts the supervisors (tests). Default: a helper process of its own (`spawner.ts`). */
  spawner?: Spawner;
}

export function createProcessDriver(opts: ProcessDriverOptions = {}): Driver {
  const shell = opts.shell ?? '/bin/sh';
  const supervisor = opts.supervisor !== undefined ? opts.supervisor : nativeOrScript(opts.log);
  const stateDir = opts.sessionsDir ? dirname(resolve(opts.sessionsDir)) : undefined;
  const users =
    opts.users ??
    resolveTaskUsers({ ...(opts.taskUids ? { taskUids: opts.taskUids } : {}), stateDir: stateDir ?? 'process-driver' });
  if (users.mode === 'runner') opts.log?.(`warning: process driver: ${users.why}`);
  const pool =
    users.mode === 'switch' ? new TaskUserPool(users.range, () => recordedUsers(opts.sessionsDir)) : undefined;
  const reaper = new Reaper();
  /** Starts the supervisors (a small helper process: see spawner.ts). */
  const spawner = opts.spawner ?? createSpawner();
  /** The state dir's modes are set once per driver (a task cannot change them: it is not its). */
  let secured = false;

  /**
   * Kills what the task's user left running and takes its workspace back; its id is free again
   * (the session dir stops claiming it). The native supervisor kills it as it ends and says so
   * in the exit file (only it writes there): then nothing is left to look for in /proc.
   */
  const endTaskUser = async (
    sessionDir: string,
    user: TaskUserRecord | null,
    recorded: ExitRecord | null = readExitFile(sessionDir),
  ): Promise<void> => {
    if (!user) return;
    if (recorded?.reaped !== true) await reaper.reap(user.uid);
    if (user.workspace) takeWorkspaceBack(user.workspace);
    rmSync(join(sessionDir, USER_FILE), { force: true });
    pool?.release(user.uid);
  };

  return {
    name: 'process',
    // `recover` falls back to looking for the supervisor by its script's path (findSupervisors).
    findsTasksWithoutHandle: true,

    async run(req) {
      if (req.signal.aborted) return { exitCode: 130, failedStep: 0, aborted: true };
      if (stateDir && !secured) {
        secureStateDir(stateDir, users);
        secured = true;
      }
      const workspace = resolve(req.workspace ?? req.cwd);
      // Only a folder of the runner's own is handed to the task user: a workspace under
      // `<state>/work/`, or (a driver without a state dir) a folder made for this task now.
      const ours = stateDir ? isBelow(join(stateDir, 'work'), workspace) : !existsSync(workspace);
      mkdirSync(req.cwd, { recursive: true });
      // A leftover outcome in a reused dir must not pass for this run's (a new dir has none).
      if (mkdirSync(req.sessionDir, { recursive: true, mode: 0o700 }) === undefined)
        for (const f of [EXIT_FILE, STEP_FILE, USER_FILE, ABANDONED_FILE])
          rmSync(join(req.sessionDir, f), { force: true });
      writeFileSync(join(req.sessionDir, LABELS_FILE), JSON.stringify(req.labels));

      let user: TaskUserRecord | null = null;
      if (pool && users.mode === 'switch') {
        user = { uid: pool.acquire(), workspace: ours ? workspace : null };
        try {
          writeFileSync(join(req.sessionDir, USER_FILE), JSON.stringify(user));
          if (ours) {
            // The run's folder: task users pass through it to their own workspace, never list it.
            if (stateDir) chmodSync(dirname(workspace), 0o711);
            giveWorkspace(workspace, resolve(req.cwd), user.uid, users.range);
          }
        } catch (err) {
          await endTaskUser(req.sessionDir, user);
          throw err;
        }
      }
      const runAs =
        user && users.mode === 'switch' ? { uid: user.uid, gid: user.uid, setpriv: users.setpriv } : undefined;
      if (req.prepare) {
        try {
          await req.prepare(runAs ? { uid: runAs.uid, gid: runAs.gid } : undefined);
        } catch (err) {
          await endTaskUser(req.sessionDir, user);
          throw err;
        }
      }
      // Absolute: the steps file's (or script's) path in the supervisor's command line identifies it later.
      const stepsFile = supervisor ? writeStepsFile(resolve(req.sessionDir), req.steps) : null;
      const start =
        supervisor && stepsFile
          ? { command: supervisor, args: [stepsFile, runAs ? String(runAs.uid) : '-', runAs ? String(runAs.gid) : '-'] }
          : { command: shell, args: [writeTaskScript(resolve(req.sessionDir), req.steps, runAs)] };

      let exit: Promise<ProcessExit>;
      let pid: number;
      try {
        ({ pid, exit } = await spawner.spawn({ ...start, cwd: req.cwd, env: req.env, logFile: req.logFile }));
      } catch (err) {
        const started = (err as NodeJS.ErrnoException).code === STARTER_GONE ? unanswered(req.sessionDir) : null;
        if (!started) {
          await endTaskUser(req.sessionDir, user);
          throw err;
        }
        ({ pid, exit } = started);
      }
      req.onStarted?.({ driver: 'process', pid });

      const stop = stopper(pid);
      req.signal.addEventListener('abort', stop.start, { once: true });
      let recorded: ExitRecord | null = null;
      try {
        const { code, signal } = await exit;
        recorded = readExitFile(req.sessionDir);
        const result = outcome(recorded, req.sessionDir, code ?? 128 + signalNumber(signal), req.signal.aborted);
        await req.collect?.(runAs ? { uid: runAs.uid, gid: runAs.gid } : undefined, result);
        return result;
      } finally {
        req.signal.removeEventListener('abort', stop.start);
        stop.cancel();
        // The supervisor kills its group as it ends; this covers a supervisor that was killed.
        killGroup(pid, 'SIGKILL');
        await endTaskUser(req.sessionDir, user, recorded);
      }
    },

    async recover(session, signal) {
      const user = readUserFile(session.sessionDir);
      if (user) pool?.adopt(user.uid);
      const done = readExitFile(session.sessionDir);
      if (done) {
        await endTaskUser(session.sessionDir, user, done);
        return finished(done, false);
      }
      const pid = session.handle?.pid ?? findSupervisors().get(resolve(session.sessionDir));
      if (pid === undefined || !isSupervisor(pid, session.sessionDir)) {
        await endTaskUser(session.sessionDir, user);
        return vanished(session, pid);
      }

      const stop = stopper(pid);
      const onAbort = () => stop.start();
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      try {
        // Not our child: no exit event, so watch for the exit file or the pid going away.
        while (isSupervisor(pid, session.sessionDir)) {
          const ended = readExitFile(session.sessionDir);
          if (ended) return finished(ended, signal.aborted);
          await sleep(POLL_MS);
        }
        const ended = readExitFile(session.sessionDir);
        if (ended) return finished(ended, signal.aborted);
        if (signal.aborted) {
          // Killed before it could write its outcome (the KILL after the grace period).
          return {
            state: 'finished',
            result: { exitCode: 137, failedStep: readCurrentStep(session.sessionDir) ?? 0, aborted: true },
            finishedAt: new Date().toISOString(),
          };
        }
        return vanished(session, pid);
      } finally {
        signal.removeEventListener('abort', onAbort);
        stop.cancel();
        killGroup(pid, 'SIGKILL');
        await endTaskUser(session.sessionDir, user);
      }
    },

    async sweep({ runners, keep }) {
      if (!opts.sessionsDir) return 0;
      let entries: string[];
      try {
        entries = readdirSync(opts.sessionsDir, { withFileTypes: true })
          .filter((e) => e.isDirectory())
          .map((e) => join(resolve(opts.sessionsDir as string), e.name));
      } catch {
        return 0; // no sessions folder yet
      }
      const supervisors = findSupervisors();
      let removed = 0;
      for (const dir of entries) {
        let labels: TaskLabels;
        try {
          labels = JSON.parse(readFileSync(join(dir, LABELS_FILE), 'utf8')) as TaskLabels;
        } catch {
          continue; // not one of ours, or still being set up by `run`
        }
        if (!runners.includes(labels.runner) || keep(labels)) continue;
        // No session claims it: a supervisor still running is an orphan nobody will report.
        const pid = supervisors.get(dir);
        if (pid !== undefined) killGroup(pid, 'SIGKILL');
        await endTaskUser(dir, readUserFile(dir));
        rmSync(dir, { recursive: true, force: true });
        removed++;
      }
      return removed;
    },
  };
}

/** The native supervisor's path when it runs here; else null, said once through `log`. */
function nativeOrScript(log: ((line: string) => void) | undefined): string | null {
  const native = probeNativeSupervisor();
  if (native.path === null) log?.(`process driver: tasks are supervised by the shell script: ${native.why}`);
  return native.path;
}

/** Whether `path` is strictly below `root`. */
function isBelow(root: string, path: string): boolean {
  const rel = relative(resolve(root), path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !rel.startsWith(sep);
}

function readUserFile(sessionDir: string): TaskUserRecord | null {
  try {
    return JSON.parse(readFileSync(join(sessionDir, USER_FILE), 'utf8')) as TaskUserRecord;
  } catch {
    return null; // ran as the runner's user, or never started
  }
}

/** The ids the recorded tasks of an earlier runner process run as (their session dirs say). */
function recordedUsers(sessionsDir: string | undefined): number[] {
  if (!sessionsDir) return [];
  let names: string[];
  try {
    names = readdirSync(sessionsDir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
  return names.flatMap((name) => readUserFile(join(sessionsDir, name))?.uid ?? []);
}

function outcome(recorded: ExitRecord | null, sessionDir: string, status: number, aborted: boolean): DriverResult {
  if (recorded) return { exitCode: recorded.exitCode, failedStep: recorded.failedStep, aborted };
  // Killed before writing its outcome (KILL after the grace period, or from outside).
  return { exitCode: status, failedStep: readCurrentStep(sessionDir) ?? 0, aborted };
}

function finished(r: { exitCode: number; failedStep: number | null; finishedAt: string }, aborted: boolean): Recovered {
  return {
    state: 'finished',
    result: { exitCode: r.exitCode, failedStep: r.failedStep, aborted },
    finishedAt: r.finishedAt,
  };
}

function vanished(session: SessionRecord, pid: number | undefined): Recovered {
  const who = pid === undefined ? 'its supervisor was never recorded and none runs' : `supervisor pid ${pid} is gone`;
  return {
    state: 'vanished',
    reason:
      `task ${session.labels.task} (attempt ${session.labels.attempt}) of ${session.labels.run}: ${who} ` +
      `and left no exit file in ${session.sessionDir} (killed from outside, or the machine restarted)`,
  };
}

/**
 * The helper that starts supervisors died with this one's start unanswered: it may have started
 * it, or may yet (a forked child execs after its parent is gone). The abandoned marker settles it:
 * a script that starts from now on finds it and runs nothing, so a supervisor is either running
 * now (found by its script's path), or ended (its exit file), or never runs. Null: never runs.
 */
function unanswered(sessionDir: string): { pid: number; exit: Promise<ProcessExit> } | null {
  writeFileSync(join(sessionDir, ABANDONED_FILE), '');
  const pid = findSupervisors().get(resolve(sessionDir));
  if (pid !== undefined && isSupervisor(pid, sessionDir)) {
    const exit = (async () => {
      while (isSupervisor(pid, sessionDir)) await sleep(POLL_MS);
      return { code: null, signal: null };
    })();
    return { pid, exit };
  }
  // Ended already: there is no process to watch or signal (pid 0: `killGroup` skips it), and its
  // exit file says how it ended.
  if (readExitFile(sessionDir)) return { pid: 0, exit: Promise.resolve({ code: null, signal: null }) };
  return null;
}

/** TERM the group now, KILL it after the grace period. */
function stopper(pgid: number): { start: () => void; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  return {
    start: () => {
      killGroup(pgid, 'SIGTERM');
      timer ??= setTimeout(() => killGroup(pgid, 'SIGKILL'), KILL_GRACE_MS);
    },
    cancel: () => {
      if (timer) clearTimeout(timer);
    },
  };
}

/**
 * True while `pid` is the live supervisor of `sessionDir`: its command line names the task
 * script or steps file in that dir, and it runs as the runner's own user. A reused pid runs something else; a
 * zombie has an empty command line; a task's process may imitate the command line (its session
 * dir's path can be worked out from its own labels), never the user.
 */
function isSupervisor(pid: number, sessionDir: string): boolean {
  const line = commandLine(pid);
  if (line === null) return false;
  const dir = resolve(sessionDir);
  return SUPERVISOR_FILES.some((f) => line.includes(join(dir, f))) && runsAsUs(pid);
}

/** Whether every user id of `pid` (real, effective, saved, filesystem) is this process's own. */
function runsAsUs(pid: number): boolean {
  const ours = process.getuid?.();
  if (ours === undefined) return true;
  try {
    const line = /^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    const uids = line?.trim().split(/\s+/).map(Number) ?? [];
    return uids.length > 0 && uids.every((uid) => uid === ours);
  } catch {
    return false; // gone
  }
}

function commandLine(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return null;
  }
}

/** Live supervisors on this machine, by session dir (for a task whose pid was never recorded). */
function findSupervisors(): Map<string, number> {
  const found = new Map<string, number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return found;
  }
  const suffixes = SUPERVISOR_FILES.map((f) => `/${f}`);
  for (const name of pids) {
    const args = (() => {
      try {
        return readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      } catch {
        return [];
      }
    })();
    const file = args[1];
    const suffix = suffixes.find((s) => file?.endsWith(s));
    // The group leader only: `<shell> <sessionDir>/task.sh` or `<supervisor> <sessionDir>/task.steps`;
    // its steps run `sh -c`. Run by us: a task's process of the same command line is an imitation.
    if (file && suffix && Number(name) === processGroup(Number(name)) && runsAsUs(Number(name))) {
      found.set(file.slice(0, -suffix.length), Number(name));
    }
  }
  return found;
}

function processGroup(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ppid pgrp ...": fields after the last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return null;
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  // 0 would be our own group (a supervisor that ended before it was found has no pid here).
  if (!(pgid > 1)) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGKILL: 9,
    SIGTERM: 15,
  };
  return (signal && numbers[signal]) ?? 1;
}
