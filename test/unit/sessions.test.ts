/** Session records on disk: atomic writes, one per (run, task, attempt), handles, listing, closing, lookups. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SessionRecord, TaskLabels } from '../../src/runner/driver';
import { RefusedExecution, SessionStore } from '../../src/runner/sessions';

let dataDir: string;
let store: SessionStore;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'runfleet-sessions-'));
  store = new SessionStore(dataDir);
});
afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

const labels = (task: string, attempt = 1, run = 'run/main/42'): TaskLabels => ({
  run,
  task,
  attempt,
  runner: 'r1',
  pool: 'linux',
});

function record(l: TaskLabels, startedAt = '2025-01-01T00:00:00.000Z'): SessionRecord {
  return {
    labels: l,
    driver: 'process',
    handle: null,
    sessionDir: store.dirFor(l),
    logFile: join(dataDir, 'logs', `${l.task}.log`),
    startedAt,
    bootId: 'boot-a',
  };
}

describe('SessionStore', () => {
  it('writes a record, reads it back, and keeps nothing else (no temporary files)', () => {
    const l = labels('build');
    store.write(record(l));
    expect(store.get(l)).toEqual(record(l));
    expect(readdirSync(store.root)).toEqual([`${SessionStore.keyOf(l)}.json`]);
    expect(store.root).toBe(join(dataDir, 'sessions'));
  });

  it('one record per (run, task, attempt); names that read alike do not collide', () => {
    const a = labels('build', 1, 'run/a/b');
    const b = labels('build', 1, 'run/a_b');
    const retry = labels('build', 2, 'run/a/b');
    for (const l of [a, b, retry]) store.write(record(l));
    expect(new Set([a, b, retry].map((l) => SessionStore.keyOf(l))).size).toBe(3);
    expect(store.list()).toHaveLength(3);
    // Rewriting the same execution replaces its record.
    store.write({ ...record(a), bootId: 'boot-b' });
    expect(store.list()).toHaveLength(3);
    expect(store.get(a)?.bootId).toBe('boot-b');
  });

  it('keys are file names: safe characters only, bounded length', () => {
    const key = SessionStore.keyOf(labels('x'.repeat(500), 3, 'run/../../etc passwd'));
    expect(key).toMatch(/^[A-Za-z0-9_.-]+$/);
    expect(key.length).toBeLessThan(160);
    expect(key).not.toContain('/');
  });

  it('update sets the handle, keeping the rest', () => {
    const l = labels('test');
    store.write(record(l));
    store.update(l, { driver: 'process', pid: 1234 });
    expect(store.get(l)).toEqual({ ...record(l), handle: { driver: 'process', pid: 1234 } });
    store.setHandle(l, { driver: 'docker', containerId: 'abc' });
    expect(store.get(l)?.handle).toEqual({ driver: 'docker', containerId: 'abc' });
    expect(() => store.update(labels('unknown'), { driver: 'process', pid: 1 })).toThrow(/no session recorded/);
  });

  it('lists oldest first and skips files being written or not records', () => {
    store.write(record(labels('late'), '2025-01-02T00:00:00.000Z'));
    store.write(record(labels('early'), '2025-01-01T00:00:00.000Z'));
    writeFileSync(join(store.root, 'half.json.123.tmp'), '{"lab');
    writeFileSync(join(store.root, 'broken.json'), '{"lab');
    expect(store.list().map((r) => r.labels.task)).toEqual(['early', 'late']);
  });

  it('close forgets the record and its session dir and keeps how it ended; unknown ones are fine', () => {
    const l = labels('deploy');
    store.begin(record(l));
    mkdirSync(store.dirFor(l), { recursive: true });
    writeFileSync(join(store.dirFor(l), 'exit'), '{}');
    expect(store.lookup(l)).toEqual({ state: 'recorded' });
    const outcome = { exitCode: 3, failedStep: 1, startedAt: 'a', finishedAt: 'b' };
    store.close(l, outcome);
    expect(store.get(l)).toBeNull();
    expect(existsSync(store.dirFor(l))).toBe(false);
    expect(store.list()).toEqual([]);
    expect(store.lookup(l)).toEqual({ state: 'ended', outcome });
    // Another attempt of the same task is another execution.
    expect(store.lookup(labels('deploy', 2))).toEqual({ state: 'unknown' });
    const killed = labels('killed');
    store.begin(record(killed));
    store.close(killed, null);
    expect(store.lookup(killed)).toEqual({ state: 'ended', outcome: null });
    store.close(labels('never'), null);
  });

  it('an execution declared never received is refused when it arrives; others start', () => {
    const late = labels('late');
    expect(store.lookup(late)).toEqual({ state: 'unknown' });
    store.refuse(late);
    expect(store.lookup(late)).toEqual({ state: 'refused' });
    expect(() => store.begin(record(late))).toThrow(RefusedExecution);
    expect(() => store.begin(record(late))).toThrow(/told the run it never received it: not started/);
    expect(store.get(late)).toBeNull();
    expect(store.list()).toEqual([]);
    const next = labels('late', 2);
    store.begin(record(next));
    expect(store.lookup(next)).toEqual({ state: 'recorded' });
  });

  it('sweeps done and refused markers past retention, never records', () => {
    const [old, fresh, refused, running] = [labels('old'), labels('fresh'), labels('refused'), labels('running')];
    store.close(old, null);
    store.close(fresh, null);
    store.refuse(refused);
    store.begin(record(running));
    const dayAgo = new Date(Date.now() - 86_400_000);
    for (const name of readdirSync(store.root)) {
      if (!name.startsWith('run_main_42_fresh')) utimesSync(join(store.root, name), dayAgo, dayAgo);
    }
    expect(store.sweepMarkers(3_600_000)).toBe(2);
    expect(store.lookup(old)).toEqual({ state: 'unknown' });
    expect(store.lookup(refused)).toEqual({ state: 'unknown' });
    expect(store.lookup(fresh)).toEqual({ state: 'ended', outcome: null });
    expect(store.lookup(running)).toEqual({ state: 'recorded' });
    expect(new SessionStore(join(dataDir, 'nothing')).sweepMarkers(0)).toBe(0);
  });

  it('an empty data dir has no sessions', () => {
    expect(store.list()).toEqual([]);
    expect(store.get(labels('x'))).toBeNull();
  });
});
