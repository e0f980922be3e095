import { existsSync, mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
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

  it('reads the retention from RUNFLEET_LOG_RETENTION_DAYS and names a bad value', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'runfleet-retention-cfg-'));
    expect(loadConfig({ cwd, env: {} }).runner.logRetentionDays).toBe(7);
    expect(loadConfig({ cwd, env: { RUNFLEET_LOG_RETENTION_DAYS: '30' } }).runner.logRetentionDays).toBe(30);
    expect(() => loadConfig({ cwd, env: { RUNFLEET_LOG_RETENTION_DAYS: '0' } })).toThrow(
      /RUNFLEET_LOG_RETENTION_DAYS: must be more than 0/,
    );
  });
});
