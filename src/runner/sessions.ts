/**
 * Records of the task executions started on this runner, kept on disk so that a runner process
 * killed mid-task finds its tasks again when it starts (the runner is the source of truth about
 * what runs on it). One JSON file per (run, task, attempt) in `<dataDir>/sessions/`, written
 * before the task starts and updated with the driver's handle once it has; each record has a
 * session dir of the same name next to it, where the driver keeps its own files.
 *
 * Writes go to a temporary file that is then renamed over the record, so a reader (or a runner
 * killed mid-write) sees the old record or the new one, never half of one. No fsync: a machine
 * crash loses the tasks anyway.
 *
 * Two markers answer a run that lost track of an execution (`lookup`, the `lookupTask` activity):
 * - `<key>.done`: the execution ended here (with its outcome when it ran to the end). Written
 *   before the record goes, so an outcome whose completion the server refused is still known.
 * - `<key>.refused`: the runner told the run it never received this execution (the server handed
 *   it out, the poll response never arrived). `begin` refuses it from then on, so a late delivery
 *   never starts a task the run has given to another runner.
 * Markers go after the runner's task-file retention (`sweepMarkers`).
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { TaskOutcome } from '../types';
import type { DriverHandle, SessionRecord, TaskLabels } from './driver';

type ExecutionRef = Pick<TaskLabels, 'run' | 'task' | 'attempt'>;

/** What this runner knows of one execution (run, task, attempt). */
export type ExecutionLookup =
  /** Recorded: running, or ended and being reported. */
  | { state: 'recorded' }
  /** Ended here; the outcome when it ran to its end (null: killed by a stop or its timeout). */
  | { state: 'ended'; outcome: TaskOutcome | null }
  /** Declared never received: refused from then on. */
  | { state: 'refused' }
  /** Never seen by this runner. */
  | { state: 'unknown' };

/** `begin` of an execution the runner has declared never received. */
export class RefusedExecution extends Error {
  constructor(labels: ExecutionRef) {
    super(
      `task ${labels.run}/${labels.task} attempt ${labels.attempt} arrived after this runner told the run it never received it: not started`,
    );
    this.name = 'RefusedExecution';
  }
}

/** Readable part of a key, kept short: names stay well under the 255-byte limit. */
const READABLE_CHARS = 120;

export class SessionStore {
  /** `<dataDir>/sessions`: the records and the session dirs. */
  readonly root: string;

  constructor(dataDir: string) {
    this.root = join(dataDir, 'sessions');
  }

  /**
   * A file name for a task execution: readable (run, task, attempt with unsafe characters
   * replaced) plus a hash of the exact labels, so two names that read the same never collide.
   */
  static keyOf(labels: Pick<TaskLabels, 'run' | 'task' | 'attempt'>): string {
    const exact = JSON.stringify([labels.run, labels.task, labels.attempt]);
    const readable = `${labels.run}_${labels.task}_${labels.attempt}`
      .replace(/[^A-Za-z0-9_.-]+/g, '_')
      .slice(0, READABLE_CHARS);
    const hash = createHash('sha256').update(exact).digest('hex').slice(0, 16);
    return `${readable}-${hash}`;
  }

  /** The session dir of a task execution (where its driver keeps the exit file, the script...). */
  dirFor(labels: TaskLabels): string {
    return join(this.root, SessionStore.keyOf(labels));
  }

  /**
   * Records a task execution before anything of it starts. Throws `RefusedExecution` when the
   * runner has declared it never received (`refuse`). Synchronous, like `refuse`: within the
   * runner process one of the two comes first, whole.
   */
  begin(record: SessionRecord): void {
    if (existsSync(this.markerFor(record.labels, 'refused'))) throw new RefusedExecution(record.labels);
    this.write(record);
  }

  /** Records (or replaces) a task execution, atomically. */
  write(record: SessionRecord): void {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const file = this.fileFor(record.labels);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
    renameSync(tmp, file);
  }

  get(labels: TaskLabels): SessionRecord | null {
    return readRecord(this.fileFor(labels));
  }

  /** Every recorded task execution, oldest first. */
  list(): SessionRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.root).filter((n) => n.endsWith('.json'));
    } catch {
      return [];
    }
    return names
      .map((n) => readRecord(join(this.root, n)))
      .filter((r): r is SessionRecord => r !== null)
      .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  /** Sets the driver's handle of a recorded execution (called from the driver's `onStarted`). */
  update(labels: TaskLabels, handle: DriverHandle): void {
    const record = this.get(labels);
    if (!record) throw new Error(`no session recorded for ${SessionStore.keyOf(labels)}`);
    this.write({ ...record, handle });
  }

  /** Same as `update` (the name the runner activities use). */
  setHandle(labels: TaskLabels, handle: DriverHandle): void {
    this.update(labels, handle);
  }

  /**
   * An execution ended (its outcome, or null when it was killed): the `done` marker keeps that,
   * then the record and its session dir go. Killed in between, the record wins (`lookup`,
   * recovery).
   */
  close(labels: TaskLabels, outcome: TaskOutcome | null): void {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    writeFileSync(this.markerFor(labels, 'done'), `${JSON.stringify({ outcome })}\n`);
    rmSync(this.fileFor(labels), { force: true });
    removeDir(this.dirFor(labels));
  }

  /** What this runner knows of an execution. */
  lookup(labels: ExecutionRef): ExecutionLookup {
    if (existsSync(this.fileFor(labels))) return { state: 'recorded' };
    try {
      const done = JSON.parse(readFileSync(this.markerFor(labels, 'done'), 'utf8')) as { outcome?: TaskOutcome };
      return { state: 'ended', outcome: done.outcome ?? null };
    } catch {
      // not ended here (or a marker cut short by a crash: nothing to tell from it)
    }
    return existsSync(this.markerFor(labels, 'refused')) ? { state: 'refused' } : { state: 'unknown' };
  }

  /** Declares an execution never received: `begin` refuses it from now on. */
  refuse(labels: ExecutionRef): void {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    writeFileSync(this.markerFor(labels, 'refused'), '');
  }

  /** Removes `done` and `refused` markers older than `retentionMs`; returns how many. */
  sweepMarkers(retentionMs: number, now = Date.now()): number {
    let names: string[];
    try {
      names = readdirSync(this.root).filter((n) => n.endsWith('.done') || n.endsWith('.refused'));
    } catch {
      return 0;
    }
    let removed = 0;
    for (const name of names) {
      const file = join(this.root, name);
      const stat = statSync(file, { throwIfNoEntry: false });
      if (stat && now - stat.mtimeMs >= retentionMs) {
        rmSync(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  private fileFor(labels: ExecutionRef): string {
    return join(this.root, `${SessionStore.keyOf(labels)}.json`);
  }

  private markerFor(labels: ExecutionRef, kind: 'done' | 'refused'): string {
    return join(this.root, `${SessionStore.keyOf(labels)}.${kind}`);
  }
}

/**
 * Removes a session dir: its few files one by one, then the dir (a recursive remove looks at each
 * entry first, twice the calls on the hot path); a dir holding more than files goes the long way.
 */
function removeDir(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return; // none
  }
  try {
    for (const name of names) unlinkSync(join(dir, name));
    rmdirSync(dir);
  } catch {
    rmSync(dir, { recursive: true, force: true });
  }
}

function readRecord(file: string): SessionRecord | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SessionRecord;
  } catch {
    return null; // removed meanwhile
  }
}
