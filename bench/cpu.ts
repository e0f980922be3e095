/**
 * CPU time of the benchmark's processes, by process class, from `/proc/<pid>/stat` (Linux) and
 * `process.cpuUsage()`: read at the start and the end of a side's measured window, the deltas in
 * seconds. Runs nothing on import but `getconf CLK_TCK` (once, on first use).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';

let clockTicks: number | undefined;

/** Clock ticks per second of the `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 when that fails). */
export function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      clockTicks = Number.isInteger(v) && v > 0 ? v : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** The fields of `/proc/<pid>/stat` the bench uses; times in clock ticks. */
export interface ProcStat {
  pid: number;
  ppid: number;
  /** The command name (`node`, `sh`...). */
  comm: string;
  /** CPU of the process itself, all its threads: user, system. */
  utime: number;
  stime: number;
  /** CPU of its children that have exited and that it (or they, recursively) waited for. */
  cutime: number;
  cstime: number;
}

/** `/proc/<pid>/stat`, or null when the process is gone (or there is no /proc). */
export function procStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): field k is f[k - 3].
  const at = (field: number): number => Number(f[field - 3]);
  const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
  return { pid, ppid: at(4), comm, utime: at(14), stime: at(15), cutime: at(16), cstime: at(17) };
}

/** Every process's stat now, and who is whose child (one scan of /proc). */
export class ProcTable {
  readonly stats = new Map<number, ProcStat>();
  private readonly childrenOf = new Map<number, number[]>();

  constructor() {
    let entries: string[] = [];
    try {
      entries = readdirSync('/proc');
    } catch {
      // no /proc: an empty table
    }
    for (const e of entries) {
      if (!/^\d+$/.test(e)) continue;
      const s = procStat(Number(e));
      if (!s) continue;
      this.stats.set(s.pid, s);
      const list = this.childrenOf.get(s.ppid) ?? [];
      list.push(s.pid);
      this.childrenOf.set(s.ppid, list);
    }
  }

  /** The live descendants of `root` (children, their children, ...). */
  descendants(root: number): number[] {
    const out: number[] = [];
    const queue = [...(this.childrenOf.get(root) ?? [])];
    while (queue.length > 0) {
      const pid = queue.shift() as number;
      out.push(pid);
      queue.push(...(this.childrenOf.get(pid) ?? []));
    }
    return out;
  }

  /**
   * All CPU of these processes so far, in clock ticks: user + system of each, plus those of its
   * reaped children. Over a process and its live descendants nothing is counted twice (a child's
   * time moves into its parent's children's time only once it is reaped, and then it is no longer
   * a live descendant), so the delta over a window is the tree's CPU in it.
   */
  ticks(pids: readonly number[]): number {
    let ticks = 0;
    for (const pid of pids) {
      const s = this.stats.get(pid);
      if (s) ticks += s.utime + s.stime + s.cutime + s.cstime;
    }
    return ticks;
  }
}

/** One reading of every process class of a side. */
export interface CpuReading {
  /** Temporal's process trees (the dev server's, or a cluster's): each and its live descendants (`ProcTable.ticks`), s. */
  devServer: number;
  /** The pids the dev server reading covered (the server first, then its live descendants). */
  devServerPids: number[];
  /** This process (`process.cpuUsage()`, user + system, all threads), s. */
  bench: number;
  /**
   * Per worker process, s: its own utime + stime; its reaped children's cutime + cstime; the same
   * two of its process starter (a live `node` descendant: the runner starts its task supervisors
   * from one, `src/runner/spawner.ts`, so they are its children, not the runner's); and the CPU of
   * its other live descendants (`ProcTable.ticks`), which none of these holds.
   */
  workers: WorkerCpu[];
}

export interface WorkerCpu {
  pid: number;
  self: number;
  children: number;
  starterSelf: number;
  starterChildren: number;
  liveDescendants: number;
}

/** `serverPids`: Temporal's processes (the dev server, or a cluster's services and PostgreSQL). */
export function readCpu(serverPids: readonly number[], workerPids: readonly number[]): CpuReading {
  const tck = clkTck();
  const usage = process.cpuUsage();
  const table = new ProcTable();
  const devServerPids = serverPids.flatMap((pid) => [pid, ...table.descendants(pid)]);
  return {
    devServer: table.ticks(devServerPids) / tck,
    devServerPids,
    bench: (usage.user + usage.system) / 1e6,
    workers: workerPids.map((pid) => {
      const s = table.stats.get(pid);
      const starters: ProcStat[] = [];
      const others: number[] = [];
      for (const d of table.descendants(pid)) {
        const st = table.stats.get(d);
        if (st?.comm === 'node') starters.push(st);
        else others.push(d);
      }
      return {
        pid,
        self: s ? (s.utime + s.stime) / tck : NaN,
        children: s ? (s.cutime + s.cstime) / tck : NaN,
        starterSelf: starters.reduce((a, st) => a + st.utime + st.stime, 0) / tck,
        starterChildren: starters.reduce((a, st) => a + st.cutime + st.cstime, 0) / tck,
        liveDescendants: table.ticks(others) / tck,
      };
    }),
  };
}

/** CPU seconds by process class over a window, and per 1,000 tasks. */
export interface CpuBreakdown {
  /** Seconds in the window. */
  seconds: { devServer: number; workflowWorker: number; workers: number; tasks: number; total: number };
  /** The same per 1,000 tasks (seconds * 1000 / N). */
  per1000Tasks: { devServer: number; workflowWorker: number; workers: number; tasks: number; total: number };
  /** The dev server's pids at the window's end (the `temporal` process first). */
  devServerPids: number[];
  /**
   * Per worker process, seconds in the window: its own, its reaped children's (the task
   * processes), and the change in its live descendants' CPU (a helper it keeps running, such as
   * tsx's esbuild service; counted in no class, shown here so it is not hidden; may be negative
   * when one of them is reaped in the window, its time moving to `children`).
   */
  eachWorker: WorkerCpu[];
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/** The deltas between two readings (the same worker pids, in the same order), for `n` tasks. */
export function cpuDelta(a: CpuReading, b: CpuReading, n: number): CpuBreakdown {
  const eachWorker = b.workers.map((w, i) => {
    const w0 = a.workers[i] as CpuReading['workers'][number];
    return {
      pid: w.pid,
      self: w.self - w0.self,
      children: w.children - w0.children,
      starterSelf: w.starterSelf - w0.starterSelf,
      starterChildren: w.starterChildren - w0.starterChildren,
      liveDescendants: w.liveDescendants - w0.liveDescendants,
    };
  });
  const devServer = b.devServer - a.devServer;
  const workflowWorker = b.bench - a.bench;
  // A runner's process starter is the runner's; what it started and reaped, its tasks.
  const workers = eachWorker.reduce((s, w) => s + w.self + w.starterSelf, 0);
  const tasks = eachWorker.reduce((s, w) => s + w.children + w.starterChildren, 0);
  const seconds = { devServer, workflowWorker, workers, tasks, total: devServer + workflowWorker + workers + tasks };
  const per = (x: number): number => r3((x * 1000) / n);
  return {
    seconds: {
      devServer: r3(seconds.devServer),
      workflowWorker: r3(seconds.workflowWorker),
      workers: r3(seconds.workers),
      tasks: r3(seconds.tasks),
      total: r3(seconds.total),
    },
    per1000Tasks: {
      devServer: per(seconds.devServer),
      workflowWorker: per(seconds.workflowWorker),
      workers: per(seconds.workers),
      tasks: per(seconds.tasks),
      total: per(seconds.total),
    },
    devServerPids: b.devServerPids,
    eachWorker: eachWorker.map((w) => ({
      pid: w.pid,
      self: r3(w.self),
      children: r3(w.children),
      starterSelf: r3(w.starterSelf),
      starterChildren: r3(w.starterChildren),
      liveDescendants: r3(w.liveDescendants),
    })),
  };
}

/** `os.loadavg()` now, rounded to 2 decimals: the 1, 5 and 15 minute averages. */
export function loadAvg(): [number, number, number] {
  const [a, b, c] = os.loadavg();
  const r = (x: number | undefined): number => Math.round((x ?? NaN) * 100) / 100;
  return [r(a), r(b), r(c)];
}

/** `1.23 0.98 0.70` */
export const formatLoad = (l: readonly number[]): string => l.map((x) => x.toFixed(2)).join(' ');
