/**
 * Who a process-driver task runs as. A runner running as root runs each task's steps as an
 * unprivileged numeric user of its own (uid = gid, no passwd entry needed), taken from a range:
 * concurrent tasks get distinct ids, so none can read another's workspace or signal its
 * processes, and none can read what is the runner's (its state dir, identity, token, session
 * records, `/proc/<runner pid>/environ`). The supervisor (`task.sh`) stays root and switches to
 * the task's user for each step with `setpriv`, so the exit file it writes, and the records next
 * to it, are out of the task's reach: a task decides its own exit code and nothing else.
 *
 * A runner that is not root cannot switch: its tasks run as the runner's own user and can read
 * all of the above, so the process driver is for trusted code only there (the runner says so
 * when it starts).
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  type Stats,
} from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { RunfleetError } from '../errors';

/** A range of numeric user ids, both ends included. */
export interface UidRange {
  first: number;
  last: number;
}

/** How a runner's process driver runs its tasks. */
export type TaskUsers =
  /** Each task as its own user from `range`, switched to with `setpriv`. */
  | { mode: 'switch'; range: UidRange; setpriv: string }
  /** As the runner's own user; `why` is the warning the runner logs at start. */
  | { mode: 'runner'; why: string };

/** Ids a default range is taken from: above any real account, below 2^31 (some tools read ids as signed). */
const DEFAULT_BASE = 100_000_000;
/** Ids in a default range: more than the 256 slots a runner may have, tasks of a killed runner included. */
const DEFAULT_SIZE = 1_000;
/** Default ranges to choose from (the state dir's hash picks one): two runners on a machine rarely share. */
const DEFAULT_BLOCKS = 1_000_000;
/** Where `setpriv` (util-linux) lives on the systems we run on. */
const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv', '/sbin/setpriv'];
/** How many rounds `killUser` tries against a user whose processes keep forking. */
const KILL_ROUNDS = 20;

/** Idle ids one look through `/proc` in `acquire` finds at most (a slot's worth of tasks). */
const IDLE_IDS_PER_LOOK = 32;

/** `"FIRST-LAST"` (the `runner.taskUids` setting) as a range; a bad one is InvalidConfig. */
export function parseUidRange(text: string): UidRange {
  const m = /^(\d+)-(\d+)$/.exec(text.trim());
  const first = Number(m?.[1]);
  const last = Number(m?.[2]);
  if (!m || first < 1000 || last < first || last > 2 ** 31 - 2) {
    throw new RunfleetError(
      'InvalidConfig',
      `runner.taskUids "${text}": expected FIRST-LAST, numeric user ids from 1000 to ${2 ** 31 - 2} (or "none")`,
    );
  }
  return { first, last };
}

/**
 * The default range of a runner: 1000 ids chosen by its state directory, so two runners on one
 * machine do not give their tasks the same ids (a task user's leftovers are killed at its end).
 */
export function defaultUidRange(stateDir: string): UidRange {
  const block = createHash('sha256').update(resolve(stateDir)).digest().readUInt32BE(0) % DEFAULT_BLOCKS;
  const first = DEFAULT_BASE + block * DEFAULT_SIZE;
  return { first, last: first + DEFAULT_SIZE - 1 };
}

/**
 * How tasks will run: as their own users when this process is root, `setpriv` is there and the
 * range is mapped in this user namespace; as the runner's user otherwise (with the reason).
 * `taskUids` is the setting: a range, `"none"` (tasks run as the runner, trusted code only), or
 * unset (the default range of `stateDir`).
 */
export function resolveTaskUsers(opts: { taskUids?: string; stateDir: string; uid?: number }): TaskUsers {
  const trusted = 'the process driver is for trusted code only';
  if (opts.taskUids === 'none') {
    return {
      mode: 'runner',
      why: `runner.taskUids is "none": tasks run as the runner's own user and can read its identity, token and other tasks' files; ${trusted}`,
    };
  }
  const range = opts.taskUids === undefined ? defaultUidRange(opts.stateDir) : parseUidRange(opts.taskUids);
  const uid = opts.uid ?? process.getuid?.();
  if (uid !== 0) {
    return {
      mode: 'runner',
      why: `the runner is not root (uid ${String(uid)}), so tasks run as its own user and can read its identity, token and other tasks' files; ${trusted}`,
    };
  }
  const setpriv = SETPRIV_PATHS.find((p) => existsSync(p));
  if (!setpriv) {
    return {
      mode: 'runner',
      why: `setpriv (util-linux) is not installed, so tasks run as root and can read the runner's identity and token; ${trusted}`,
    };
  }
  if (!uidsMapped(range)) {
    return {
      mode: 'runner',
      why: `task user ids ${range.first}-${range.last} are not mapped in this user namespace (/proc/self/uid_map); set runner.taskUids to a mapped range. Until then tasks run as root: ${trusted}`,
    };
  }
  return { mode: 'switch', range, setpriv };
}

/** True when every id of the range exists in this process's user namespace. */
function uidsMapped(range: UidRange): boolean {
  let text: string;
  try {
    text = readFileSync('/proc/self/uid_map', 'utf8');
  } catch {
    return true; // no user namespaces here: every id exists
  }
  return text
    .trim()
    .split('\n')
    .some((line) => {
      const [inside, , count] = line.trim().split(/\s+/).map(Number) as [number, number, number];
      return range.first >= inside && range.last < inside + count;
    });
}

/**
 * Hands out task user ids: the lowest id of the range that no task of this driver holds, that
 * `claimed()` does not name (a task of an earlier runner process still recorded) and that owns
 * no process (what anybody else on the machine runs with it).
 *
 * Looking through `/proc` costs about a millisecond on a busy machine, so it is done only when
 * no id is known to be free, and one look finds up to IDLE_IDS_PER_LOOK of them: an id this pool
 * gave back after its task's processes were killed, or found idle by a look, is handed out
 * without another (the range is this runner's; only its own tasks run with these ids).
 */
export class TaskUserPool {
  private readonly held = new Set<number>();
  /** Given back after `reap`: owning no process then, and held by nobody since. */
  private readonly free = new Set<number>();

  constructor(
    readonly range: UidRange,
    private readonly claimed: () => Iterable<number> = () => [],
  ) {}

  /** An id for a new task; `TaskSpawnFailed` when every id of the range is taken. */
  acquire(): number {
    let lowest: number | undefined;
    for (const uid of this.free) if (lowest === undefined || uid < lowest) lowest = uid;
    if (lowest !== undefined) {
      this.free.delete(lowest);
      this.held.add(lowest);
      return lowest;
    }
    // One look serves the next few acquisitions too: nothing but this runner's tasks starts a
    // process with an id of its range, so an id found idle stays idle until it hands it out.
    const taken = new Set([...this.held, ...this.claimed()]);
    const running = usersWithProcesses();
    for (let uid = this.range.first; uid <= this.range.last && this.free.size < IDLE_IDS_PER_LOOK; uid++)
      if (!taken.has(uid) && !running.has(uid)) this.free.add(uid);
    if (this.free.size > 0) return this.acquire();
    throw new RunfleetError(
      'TaskSpawnFailed',
      `every task user id of ${this.range.first}-${this.range.last} is in use; widen runner.taskUids`,
    );
  }

  /** An id a recovered task (started by an earlier runner process) holds until it ends. */
  adopt(uid: number): void {
    this.free.delete(uid);
    this.held.add(uid);
  }

  /** Gives an id back once `reap` (or `killUser`) has killed what ran with it. */
  release(uid: number): void {
    if (this.held.delete(uid)) this.free.add(uid);
  }
}

/** How long `reap` waits for other ids to reap with the same look through `/proc`. */
const REAP_BATCH_MS = 5;

/**
 * `killUser` for many tasks at once: the ids asked for within a few milliseconds share each look
 * through `/proc` (a busy runner ends many tasks a second). Resolves with how many processes
 * each id had left running.
 */
export class Reaper {
  private pending = new Map<number, ((killed: number) => void)[]>();
  private timer: NodeJS.Timeout | undefined;

  reap(uid: number): Promise<number> {
    return new Promise((resolve) => {
      const waiting = this.pending.get(uid);
      if (waiting) waiting.push(resolve);
      else this.pending.set(uid, [resolve]);
      this.timer ??= setTimeout(() => this.flush(), REAP_BATCH_MS);
    });
  }

  private flush(): void {
    this.timer = undefined;
    const batch = this.pending;
    this.pending = new Map();
    const killed = killUsers([...batch.keys()]);
    for (const [uid, resolvers] of batch) for (const resolve of resolvers) resolve(killed.get(uid) ?? 0);
  }
}

/** Ids that own a live process (any of real, effective, saved, filesystem), zombies left out. */
function usersWithProcesses(): Set<number> {
  const found = new Set<number>();
  for (const p of processes()) for (const uid of p.uids) found.add(uid);
  return found;
}

function processes(): { pid: number; uids: number[] }[] {
  let names: string[];
  try {
    names = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
  const out: { pid: number; uids: number[] }[] = [];
  for (const name of names) {
    let status: string;
    try {
      status = readFileSync(`/proc/${name}/status`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (/^State:\s+Z/m.test(status)) continue;
    const uids = /^Uid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).map(Number) ?? [];
    out.push({ pid: Number(name), uids });
  }
  return out;
}

/**
 * Kills every process running as `uid` (a task's leftovers: whatever left its process group, a
 * daemon a step started), so the next task given this id finds nothing of the last one running.
 * Returns how many processes it killed (each once, however many rounds it took).
 */
export function killUser(uid: number): number {
  return killUsers([uid]).get(uid) ?? 0;
}

/** `killUser` for several ids, each round one look through `/proc`; how many each had, by id. */
function killUsers(uids: number[]): Map<number, number> {
  const targets = new Set(uids);
  // A process SIGKILLed in one round can still be listed (not yet a zombie) in the next one on a
  // busy machine: it is killed again but counted once.
  const killed = new Map<number, Set<number>>(uids.map((uid) => [uid, new Set()]));
  for (let round = 0; round < KILL_ROUNDS; round++) {
    let found = 0;
    for (const p of processes()) {
      const uid = p.uids.find((u) => targets.has(u));
      if (uid === undefined) continue;
      found++;
      try {
        process.kill(p.pid, 'SIGKILL');
        killed.get(uid)?.add(p.pid);
      } catch {
        // ESRCH: gone already
      }
    }
    if (found === 0) break;
  }
  return new Map([...killed].map(([uid, pids]) => [uid, pids.size]));
}

/**
 * Gives a task's workspace to its user: the folder (and the folders down to `cwd` inside it) are
 * its own, mode 0700, and what earlier task users left in it (a retry of the task) becomes this
 * user's. Nothing else changes owner: links are changed as links, never followed, and a file of
 * the runner (or of anybody outside the task range) stays theirs, so a hard link a task made
 * never hands it a file that was not a task's.
 */
export function giveWorkspace(workspace: string, cwd: string, uid: number, range: UidRange): void {
  const inRange = (s: Stats) => s.uid >= range.first && s.uid <= range.last;
  const stack = [workspace];
  while (stack.length > 0) {
    const path = stack.pop() as string;
    const stat = lstatSync(path, { throwIfNoEntry: false });
    if (!stat) continue;
    if (path === workspace || inRange(stat)) lchownSync(path, uid, uid);
    if (stat.isDirectory() && (path === workspace || inRange(stat))) {
      for (const entry of readdirSync(path)) stack.push(join(path, entry));
    }
  }
  chmodSync(workspace, 0o700);
  // The folders on the way to the task's working directory (a relative working_dir), made by us.
  const rel = relative(workspace, cwd);
  if (rel && !rel.startsWith('..')) {
    let dir = workspace;
    for (const part of rel.split(sep)) {
      dir = join(dir, part);
      const stat = lstatSync(dir, { throwIfNoEntry: false });
      if (stat?.isDirectory()) lchownSync(dir, uid, uid);
    }
  }
}

/**
 * Takes a finished task's workspace back: the folder is the runner's again, mode 0700, so a later
 * task given the same id cannot enter what this one kept there (it stays for the log retention).
 */
export function takeWorkspaceBack(workspace: string): void {
  const stat = lstatSync(workspace, { throwIfNoEntry: false });
  if (!stat?.isDirectory()) return;
  lchownSync(workspace, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
  chmodSync(workspace, 0o700);
}

/**
 * The modes of a runner's state directory: 0700 everywhere (sessions, logs, identity, config are
 * the runner's alone), except that task users may pass through the state dir and `work/` to
 * their own workspace (0711: they can enter a folder they know the name of, never list one).
 * Applied to what exists, so a state dir an older runner made 0755 is closed too.
 */
export function secureStateDir(stateDir: string, users: TaskUsers): void {
  const traverse = users.mode === 'switch' ? 0o711 : 0o700;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, traverse);
  for (const [name, mode] of [
    ['sessions', 0o700],
    ['logs', 0o700],
    ['work', traverse],
  ] as const) {
    const dir = join(stateDir, name);
    mkdirSync(dir, { recursive: true, mode });
    chmodSync(dir, mode);
  }
}
