/**
 * Process-driver tasks on a root runner run as users of their own (`src/runner/task-user.ts`):
 * the modes of the state dir, the user a step runs as, what it can and cannot reach, its
 * workspace handed over and taken back, its leftovers killed. Needs root (CI and the dev
 * container run tests as root); the non-root behaviour is checked without switching.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeRunnerSettings } from '../../src/runner/local-config';
import type { DriverRun } from '../../src/runner/driver';
import { probeNativeSupervisor } from '../../src/runner/native-supervisor';
import { createProcessDriver } from '../../src/runner/process-driver';
import { SessionStore } from '../../src/runner/sessions';
import { readExitFile, writeStepsFile } from '../../src/runner/task-script';
import {
  defaultUidRange,
  killUser,
  parseUidRange,
  Reaper,
  resolveTaskUsers,
  secureStateDir,
  TaskUserPool,
} from '../../src/runner/task-user';
import { until } from '../helpers/until';

const isRoot = process.getuid?.() === 0;
const PATH = process.env.PATH ?? '/usr/bin:/bin';

let state: string;
beforeEach(() => {
  state = join(mkdtempSync(join(tmpdir(), 'runfleet-task-user-')), 'state');
});
afterEach(() => {
  rmSync(join(state, '..'), { recursive: true, force: true });
});

const mode = (path: string) => statSync(path).mode & 0o777;

function task(name: string, steps: string[], extra: Partial<DriverRun> = {}): DriverRun {
  const labels = { run: 'run/g/1', task: name, attempt: 1, runner: 'r1', pool: 'p' };
  const workspace = join(state, 'work', 'run_g_1', name);
  return {
    steps: steps.map((run) => ({ run })),
    cwd: workspace,
    workspace,
    env: { PATH, SECRET_FILE: join(state, 'identity.json') },
    logFile: join(state, 'logs', 'run_g_1', `${name}.log`),
    sessionDir: new SessionStore(state).dirFor(labels),
    labels,
    signal: new AbortController().signal,
    ...extra,
  };
}

function driverFor(stateDir: string) {
  return createProcessDriver({ sessionsDir: new SessionStore(stateDir).root });
}

function prepare(req: DriverRun): void {
  mkdirSync(join(req.logFile, '..'), { recursive: true });
}

/**
 * `sleep 60` as `uid`, once it runs as that user (setpriv switches before it execs sleep: wait
 * for that, not a fixed time, a busy machine is slow), with the signal that ended it.
 */
async function sleeperAs(uid: number): Promise<{ pid: number; ended: Promise<NodeJS.Signals | null> }> {
  const child = spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'sleep', '60'], {
    stdio: 'ignore',
  });
  const ended = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
  await until(
    `pid ${child.pid} running as uid ${uid}`,
    () => new RegExp(`^Uid:\\t${uid}\\t`, 'm').test(readFileSync(`/proc/${child.pid}/status`, 'utf8')),
    10_000,
  );
  return { pid: child.pid as number, ended };
}

/** Whether `pid` runs (a zombie does not). */
const running = (pid: number) =>
  existsSync(`/proc/${pid}`) && !/State:\s+Z/.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

describe('task users: settings', () => {
  it('parses FIRST-LAST and names a bad range', () => {
    expect(parseUidRange('200000-200009')).toEqual({ first: 200000, last: 200009 });
    expect(() => parseUidRange('0-10')).toThrow(/runner.taskUids "0-10": expected FIRST-LAST/);
    expect(() => parseUidRange('5000-4000')).toThrow(/expected FIRST-LAST/);
    expect(() => parseUidRange('root')).toThrow(/expected FIRST-LAST/);
  });

  it('a default range per state dir: 1000 ids, different for two runners, the same after a restart', () => {
    const a = defaultUidRange('/var/lib/runfleet/a');
    expect(a.last - a.first).toBe(999);
    expect(a.first).toBeGreaterThanOrEqual(100_000_000);
    expect(a.last).toBeLessThan(2 ** 31 - 1);
    expect(defaultUidRange('/var/lib/runfleet/a')).toEqual(a);
    expect(defaultUidRange('/var/lib/runfleet/b')).not.toEqual(a);
  });

  it('a runner that is not root cannot switch: it says why, once, and names trusted code', () => {
    const users = resolveTaskUsers({ stateDir: state, uid: 1000 });
    expect(users.mode).toBe('runner');
    expect(users.mode === 'runner' && users.why).toMatch(/not root \(uid 1000\).*trusted code only/);
    const lines: string[] = [];
    createProcessDriver({ sessionsDir: join(state, 'sessions'), users, log: (l) => lines.push(l) });
    expect(lines).toEqual([`warning: process driver: ${users.mode === 'runner' ? users.why : ''}`]);
    expect(resolveTaskUsers({ stateDir: state, taskUids: 'none', uid: 0 }).mode).toBe('runner');
  });
});

describe('state dir modes', () => {
  it('a root runner: state dir and work/ 0711 (pass through only), sessions/ and logs/ 0700', () => {
    secureStateDir(state, { mode: 'switch', range: { first: 1000, last: 1001 }, setpriv: '/usr/bin/setpriv' });
    expect(mode(state)).toBe(0o711);
    expect(mode(join(state, 'work'))).toBe(0o711);
    expect(mode(join(state, 'sessions'))).toBe(0o700);
    expect(mode(join(state, 'logs'))).toBe(0o700);
  });

  it('tasks as the runner: everything 0700; an older 0755 state dir is closed too', () => {
    mkdirSync(join(state, 'logs'), { recursive: true, mode: 0o755 });
    secureStateDir(state, { mode: 'runner', why: 'test' });
    for (const dir of [state, join(state, 'work'), join(state, 'sessions'), join(state, 'logs')]) {
      expect(mode(dir).toString(8)).toBe('700');
    }
  });

  it('the runner creates its files and folders for itself only: runner.yaml, sessions, markers', () => {
    writeRunnerSettings(join(state, 'runner.yaml'), { 'runner.name': 'x' });
    expect(mode(state)).toBe(0o700);
    expect(mode(join(state, 'runner.yaml'))).toBe(0o600);
    const other = join(state, '..', 'other');
    new SessionStore(other).refuse({ run: 'r', task: 't', attempt: 1 });
    expect(mode(join(other, 'sessions'))).toBe(0o700);
  });
});

describe.runIf(isRoot)('task users on a root runner', () => {
  it('a task runs as its own unprivileged user and owns its workspace; the runner gets it back at the end', async () => {
    const driver = driverFor(state);
    const req = task('who', ['id -u > uid.txt; id -G > groups.txt; grep NoNewPrivs /proc/self/status > nnp.txt']);
    prepare(req);
    const result = await driver.run(req);
    expect(result).toEqual({ exitCode: 0, failedStep: null, aborted: false });
    const uid = Number(readFileSync(join(req.cwd, 'uid.txt'), 'utf8'));
    const range = defaultUidRange(state);
    console.log(
      `task ran as uid ${uid} (range ${range.first}-${range.last}); groups ${readFileSync(join(req.cwd, 'groups.txt'), 'utf8').trim()}`,
    );
    expect(uid).toBeGreaterThanOrEqual(range.first);
    expect(uid).toBeLessThanOrEqual(range.last);
    expect(readFileSync(join(req.cwd, 'groups.txt'), 'utf8').trim()).toBe(String(uid));
    expect(readFileSync(join(req.cwd, 'nnp.txt'), 'utf8')).toMatch(/NoNewPrivs:\s+1/);
    // What the task made is its own; the folder is the runner's again, 0700.
    expect(statSync(join(req.cwd, 'uid.txt')).uid).toBe(uid);
    expect(statSync(req.cwd).uid).toBe(0);
    expect(mode(req.cwd)).toBe(0o700);
    expect(mode(join(req.cwd, '..'))).toBe(0o711);
    expect(mode(req.logFile)).toBe(0o600);
  });

  it("a task cannot read the runner's files, its session records, nor write its own exit file", async () => {
    const driver = driverFor(state);
    const ownSession = new SessionStore(state).dirFor({
      run: 'run/g/1',
      task: 'thief',
      attempt: 1,
      runner: 'r1',
      pool: 'p',
    });
    const req = task('thief', [
      'cat "$SECRET_FILE" > stolen.txt 2> err1.txt; echo "identity=$?" >> tried.txt',
      `ls "${join(state, 'sessions')}" > list.txt 2> err2.txt; echo "sessions=$?" >> tried.txt`,
      `(echo '{"exitCode":0,"failedStep":null}' > "${join(ownSession, 'exit')}") 2> err3.txt; echo "exit=$?" >> tried.txt`,
      'exit 7',
    ]);
    expect(req.sessionDir).toBe(ownSession);
    prepare(req);
    mkdirSync(state, { recursive: true });
    writeFileSync(join(state, 'identity.json'), '{"privateKey":"secret"}', { mode: 0o600 });
    const result = await driver.run(req);
    const tried = readFileSync(join(req.cwd, 'tried.txt'), 'utf8');
    console.log(
      `read identity.json, list sessions/, write its exit file: ${tried.trim().replace(/\n/g, ', ')}; outcome ${JSON.stringify(result)}`,
    );
    expect(tried).toMatch(/identity=1/);
    expect(tried).toMatch(/sessions=2/);
    expect(tried).toMatch(/exit=[12]/);
    expect(readFileSync(join(req.cwd, 'stolen.txt'), 'utf8')).toBe('');
    // Its exit code is its own to choose; the runner's record of it is not.
    expect(result).toEqual({ exitCode: 7, failedStep: 3, aborted: false });
  });

  it("two tasks at once get different users and cannot read each other's workspace", async () => {
    const driver = driverFor(state);
    const a = task('a', ['echo secret-of-a > mine.txt; sleep 2']);
    const b = task('b', [
      'sleep 0.5',
      `cat "${join(a.cwd, 'mine.txt')}" > got.txt 2> err.txt; echo "read=$?" > tried.txt; id -u > uid.txt`,
    ]);
    prepare(a);
    const [ra, rb] = await Promise.all([driver.run(a), driver.run(b)]);
    expect(ra.exitCode).toBe(0);
    expect(rb.exitCode).toBe(0);
    const tried = readFileSync(join(b.cwd, 'tried.txt'), 'utf8').trim();
    console.log(
      `task b (uid ${readFileSync(join(b.cwd, 'uid.txt'), 'utf8').trim()}) read task a's file: ${tried}, ${readFileSync(join(b.cwd, 'err.txt'), 'utf8').trim()}`,
    );
    expect(tried).toBe('read=1');
    expect(readFileSync(join(b.cwd, 'got.txt'), 'utf8')).toBe('');
    expect(statSync(join(a.cwd, 'mine.txt')).uid).not.toBe(statSync(join(b.cwd, 'uid.txt')).uid);
  });

  it("a later task with the same user id cannot enter an earlier task's kept workspace", async () => {
    const driver = driverFor(state);
    const first = task('first', ['echo kept > kept.txt; id -u > uid.txt']);
    prepare(first);
    await driver.run(first);
    const second = task('second', [
      `cat "${join(first.cwd, 'kept.txt')}" > got.txt 2>/dev/null; echo "read=$?" > tried.txt; id -u > uid.txt`,
    ]);
    await driver.run(second);
    const uid1 = readFileSync(join(first.cwd, 'uid.txt'), 'utf8').trim();
    const uid2 = readFileSync(join(second.cwd, 'uid.txt'), 'utf8').trim();
    const tried = readFileSync(join(second.cwd, 'tried.txt'), 'utf8').trim();
    console.log(`first task uid ${uid1}, second uid ${uid2}; second read the first's kept file: ${tried}`);
    expect(uid2).toBe(uid1); // the id is free again once the first ended
    expect(tried).toBe('read=1');
  });

  it.each([
    { kind: 'the native supervisor (it kills them itself)', supervisor: undefined, reaped: true },
    { kind: 'the shell script (the runner looks through /proc)', supervisor: null, reaped: false },
  ])('what a task leaves running outside its process group is killed when it ends: $kind', async (c) => {
    const driver = createProcessDriver({ sessionsDir: new SessionStore(state).root, supervisor: c.supervisor });
    const req = task('daemon', ['setsid sh -c "sleep 60" > /dev/null 2>&1 < /dev/null & echo $! > pid.txt; sleep 0.3']);
    prepare(req);
    await driver.run(req);
    const pid = Number(readFileSync(join(req.cwd, 'pid.txt'), 'utf8'));
    const alive = running(pid);
    console.log(`setsid child ${pid} after the task ended: ${alive ? 'alive' : 'gone'}`);
    expect(alive).toBe(false);
    expect(readExitFile(req.sessionDir)?.reaped).toBe(c.reaped);
  });

  it("the native supervisor sends SIGKILL to every process of the task's user as it ends (and to no other), and says so", async () => {
    const native = probeNativeSupervisor();
    expect(native.path === null ? native.why : null).toBeNull();
    const first = defaultUidRange(state).first;
    const [uid, other] = [first + 7, first + 8];
    // The task's user runs something of its own outside the task; another user runs a bystander.
    const outside = await sleeperAs(uid);
    const bystander = await sleeperAs(other);
    const session = join(state, 'by-hand');
    // Where the task's user can write (the state dir's parent is the runner's, 0700).
    const shared = mkdtempSync(join(tmpdir(), 'runfleet-task-user-shared-'));
    mkdirSync(session, { recursive: true, mode: 0o700 });
    chmodSync(shared, 0o777);
    const steps = writeStepsFile(session, [
      { run: `setsid sh -c "sleep 60" > /dev/null 2>&1 < /dev/null & echo $! > ${shared}/pid.txt; sleep 0.2` },
    ]) as string;
    // Its own process group, as the driver starts it: it ends that group, itself included.
    const supervisor = spawn(native.path as string, [steps, String(uid), String(uid)], {
      stdio: 'ignore',
      detached: true,
    });
    await new Promise((r) => supervisor.once('exit', r));
    const daemon = Number(readFileSync(join(shared, 'pid.txt'), 'utf8'));
    await until(`the task's daemon ${daemon} killed`, () => !running(daemon), 5_000);
    expect(await outside.ended).toBe('SIGKILL');
    expect(running(bystander.pid)).toBe(true);
    expect(readExitFile(session)).toMatchObject({ exitCode: 0, failedStep: null, reaped: true });
    process.kill(bystander.pid, 'SIGKILL');
    rmSync(shared, { recursive: true, force: true });
  });

  it("a retry gets what the last attempt left; a hard link to the runner's file is never handed over", async () => {
    const driver = driverFor(state);
    const req = task('retry', ['mkdir -p out/deep; echo 1 > out/deep/f.txt']);
    prepare(req);
    await driver.run(req);
    // A file of the runner's inside the workspace (as a hard link would put it there).
    writeFileSync(join(state, 'runner-secret'), 'x', { mode: 0o600 });
    linkSync(join(state, 'runner-secret'), join(req.cwd, 'link'));
    // Another task holds the first id meanwhile: the retry runs as a different user.
    const holder = driver.run(task('holder', ['id -u > uid.txt; sleep 1.5']));
    await new Promise((r) => setTimeout(r, 300));
    const again = {
      ...req,
      labels: { ...req.labels, attempt: 2 },
      steps: [{ run: 'echo 2 >> out/deep/f.txt; id -u > uid2.txt' }],
    };
    again.sessionDir = new SessionStore(state).dirFor(again.labels);
    const result = await driver.run(again);
    await holder;
    console.log(
      `attempt 2 as uid ${readFileSync(join(req.cwd, 'uid2.txt'), 'utf8').trim()} (holder ${readFileSync(join(state, 'work', 'run_g_1', 'holder', 'uid.txt'), 'utf8').trim()}): exit ${result.exitCode}`,
    );
    expect(result.exitCode).toBe(0);
    expect(statSync(join(req.cwd, 'out', 'deep', 'f.txt')).uid).toBe(
      Number(readFileSync(join(req.cwd, 'uid2.txt'), 'utf8')),
    );
    expect(readFileSync(join(req.cwd, 'out', 'deep', 'f.txt'), 'utf8')).toBe('1\n2\n');
    expect(statSync(join(state, 'runner-secret')).uid).toBe(0);
  });

  it('killUser kills every process of a user and nothing else', async () => {
    const uid = defaultUidRange(state).first;
    const child = await sleeperAs(uid);
    expect(killUser(uid)).toBe(1);
    await child.ended;
    expect(killUser(uid)).toBe(0);
  });

  it('a Reaper kills what several users left running with the same looks through /proc', async () => {
    const first = defaultUidRange(state).first;
    const uids = [first + 1, first + 2];
    const children = [];
    for (const uid of uids) children.push(await sleeperAs(uid));
    const reaper = new Reaper();
    // Asked for in the same moment: one batch; an id with nothing running counts 0.
    expect(
      await Promise.all([reaper.reap(uids[0] as number), reaper.reap(uids[1] as number), reaper.reap(first + 3)]),
    ).toEqual([1, 1, 0]);
    await Promise.all(children.map((c) => c.ended));
    expect(await reaper.reap(uids[0] as number)).toBe(0);
  });

  it('TaskUserPool: lowest free id first; an id given back is handed out again; a held one never twice', () => {
    const range = { first: 5_000_000, last: 5_000_002 };
    const pool = new TaskUserPool(range, () => [5_000_000]);
    expect(pool.acquire()).toBe(5_000_001); // 5_000_000 is claimed by a recorded task
    expect(pool.acquire()).toBe(5_000_002);
    expect(() => pool.acquire()).toThrow(/every task user id of 5000000-5000002 is in use/);
    pool.release(5_000_002);
    pool.release(5_000_001);
    expect(pool.acquire()).toBe(5_000_001);
    expect(pool.acquire()).toBe(5_000_002);
    // Releasing an id nobody holds frees nothing.
    pool.release(5_000_000);
    expect(() => pool.acquire()).toThrow(/in use/);
  });

  it('TaskUserPool: one look through /proc finds idle ids for many tasks, not one per task', () => {
    let looks = 0;
    const pool = new TaskUserPool({ first: 5_000_100, last: 5_000_199 }, () => {
      looks++;
      return [5_000_101];
    });
    const ids = Array.from({ length: 20 }, () => pool.acquire());
    expect(ids.slice(0, 3)).toEqual([5_000_100, 5_000_102, 5_000_103]);
    expect(new Set(ids).size).toBe(20);
    expect(looks).toBe(1);
  });
});
