import {
  existsSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { sweepTaskFiles } from '../../src/runner/retention';

const DAY = 86_400_000;

function runFiles(dataDir: string, run: string, ageDays: number, now: number): void {
  const when = new Date(now - ageDays * DAY);
  for (const [area, file] of [
    ['logs', 'build.log'],
    ['work', join('build', 'out.txt')],
  ] as const) {
    const path = join(dataDir, area, run, file);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, 'x');
    for (const p of [path, join(path, '..'), join(dataDir, area, run)]) utimesSync(p, when, when);
  }
}

describe('task file retention', () => {
  it('removes the logs and workspaces of runs older than the retention, keeps the rest', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'runfleet-retention-'));
    const now = Date.now();
    runFiles(dataDir, 'old', 10, now);
    runFiles(dataDir, 'recent', 1, now);
    runFiles(dataDir, 'old-but-running', 10, now);
    const removed = sweepTaskFiles({
      dataDir,
      retentionMs: 7 * DAY,
      now,
      isActive: (run) => run === 'old-but-running',
    });
    expect(removed.sort()).toEqual([join('logs', 'old'), join('work', 'old')]);
    expect(existsSync(join(dataDir, 'logs', 'old'))).toBe(false);
    expect(existsSync(join(dataDir, 'work', 'old'))).toBe(false);
    expect(existsSync(join(dataDir, 'logs', 'recent', 'build.log'))).toBe(true);
    expect(existsSync(join(dataDir, 'logs', 'old-but-running', 'build.log'))).toBe(true);
  });

  it('keeps a run whose log was written recently even if its folder is old', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'runfleet-retention-'));
    const now = Date.now();
    runFiles(dataDir, 'long', 10, now);
    writeFileSync(join(dataDir, 'logs', 'long', 'build.log'), 'still writing');
    expect(sweepTaskFiles({ dataDir, retentionMs: 7 * DAY, now, isActive: () => false })).toEqual([
      join('work', 'long'),
    ]);
  });

  it('does nothing on a runner that never ran a task', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'runfleet-retention-'));
    expect(sweepTaskFiles({ dataDir, retentionMs: DAY, isActive: () => false })).toEqual([]);
  });

  it('a symlink loop in one workspace does not stop the sweep (ELOOP); every expired run goes', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'runfleet-retention-'));
    const now = Date.now();
    const old = new Date(now - 10 * DAY);
    runFiles(dataDir, 'a-looped', 10, now);
    runFiles(dataDir, 'b-plain', 10, now);
    // Sorted first, so a sweep that dies on it never reaches the other run.
    const ws = join(dataDir, 'work', 'a-looped', 'build');
    symlinkSync('.', join(ws, 'loop'));
    symlinkSync(join(ws, 'loop'), join(ws, 'loop2'));
    for (const p of [join(ws, 'loop'), join(ws, 'loop2')]) lutimesSync(p, old, old);
    utimesSync(ws, old, old);
    const removed = sweepTaskFiles({ dataDir, retentionMs: 7 * DAY, now, isActive: () => false });
    console.log(`symlink loop in work/a-looped/build: sweep removed ${JSON.stringify(removed.sort())}`);
    expect(removed.sort()).toEqual([
      join('logs', 'a-looped'),
      join('logs', 'b-plain'),
      join('work', 'a-looped'),
      join('work', 'b-plain'),
    ]);
  });

  it('a symlink out of a workspace is removed as a link: its target and what is in it stay', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'runfleet-retention-'));
    const outside = mkdtempSync(join(tmpdir(), 'runfleet-retention-outside-'));
    writeFileSync(join(outside, 'precious.txt'), 'keep me');
    const now = Date.now();
    const old = new Date(now - 10 * DAY);
    runFiles(dataDir, 'linked', 10, now);
    const ws = join(dataDir, 'work', 'linked', 'build');
    symlinkSync(outside, join(ws, 'escape'));
    symlinkSync(join(outside, 'precious.txt'), join(ws, 'file-link'));
    for (const p of [join(ws, 'escape'), join(ws, 'file-link')]) lutimesSync(p, old, old);
    utimesSync(ws, old, old);
    // The target changed just now: followed, it would keep the run; the link's own time counts.
    const removed = sweepTaskFiles({ dataDir, retentionMs: 7 * DAY, now, isActive: () => false });
    console.log(
      `links to ${outside} in an expired workspace: removed ${JSON.stringify(removed.sort())}; target kept: ${existsSync(join(outside, 'precious.txt'))}`,
    );
    expect(removed.sort()).toEqual([join('logs', 'linked'), join('work', 'linked')]);
    expect(readFileSync(join(outside, 'precious.txt'), 'utf8')).toBe('keep me');
  });

  it('a run folder that is itself a symlink is unlinked, never followed', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'runfleet-retention-'));
    const outside = mkdtempSync(join(tmpdir(), 'runfleet-retention-outside-'));
    writeFileSync(join(outside, 'precious.txt'), 'keep me');
    const now = Date.now();
    const old = new Date(now - 10 * DAY);
    mkdirSync(join(dataDir, 'work'), { recursive: true });
    symlinkSync(outside, join(dataDir, 'work', 'run-link'));
    lutimesSync(join(dataDir, 'work', 'run-link'), old, old);
    expect(sweepTaskFiles({ dataDir, retentionMs: 7 * DAY, now, isActive: () => false })).toEqual([
      join('work', 'run-link'),
    ]);
    expect(existsSync(join(dataDir, 'work', 'run-link'))).toBe(false);
    expect(readFileSync(join(outside, 'precious.txt'), 'utf8')).toBe('keep me');
  });

  it('reads the retention from RUNFLEET_LOG_RETENTION_DAYS and names a bad value', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'runfleet-retention-cfg-'));
    expect(loadConfig({ cwd, env: {} }).runner.logRetentionDays).toBe(7);
    expect(loadConfig({ cwd, env: { RUNFLEET_LOG_RETENTION_DAYS: '30' } }).runner.logRetentionDays).toBe(30);
    expect(() => loadConfig({ cwd, env: { RUNFLEET_LOG_RETENTION_DAYS: '0' } })).toThrow(
      /RUNFLEET_LOG_RETENTION_DAYS: must be more than 0/,
    );
  });
});
