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
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DriverHandle, SessionRecord, TaskLabels } from './driver';

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

  /** Records (or replaces) a task execution, atomically. */
  write(record: SessionRecord): void {
    mkdirSync(this.root, { recursive: true });
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

  /** Forgets an execution: its record and its session dir. */
  remove(labels: TaskLabels): void {
    rmSync(this.fileFor(labels), { force: true });
    rmSync(this.dirFor(labels), { recursive: true, force: true });
  }

  private fileFor(labels: TaskLabels): string {
    return join(this.root, `${SessionStore.keyOf(labels)}.json`);
  }
}

function readRecord(file: string): SessionRecord | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SessionRecord;
  } catch {
    return null; // removed meanwhile
  }
}
