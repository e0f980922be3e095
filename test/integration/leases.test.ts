/**
 * A runner's slot goes back to the pool as soon as the run has no use for its lease (issue 12):
 * after a run's last task, and after an execution the runner refused or that failed, instead of
 * lingering for the run's next task (lingerMs) or waiting for eviction. Read on the runner's own
 * slot pool the moment the run has ended, well inside the linger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, task, type Harness } from '../helpers/harness';

let h: Harness;
beforeAll(async () => {
  // A linger far longer than the test: a slot still held afterwards shows.
  h = await startHarness({ runners: [{ name: 'solo', slots: 1 }] });
});
afterAll(async () => {
  await h?.stop();
});

const slots = () => {
  const runner = h.runners.get('solo');
  if (!runner) throw new Error('no runner solo');
  return runner.slots.snapshot();
};

describe('leases', () => {
  it("frees the slot when a run's last task ends; keeps it for a run's next task meanwhile", async () => {
    const handle = await h.start({
      name: 'chain',
      tasks: [task(h, 'first', ['true']), task(h, 'second', ['true'], { depends: ['first'] })],
    });
    const s = await handle.result();
    expect(s.result).toBe('success');
    // Both ran on one lease: the second reused the first's (one reservation for the run).
    expect(s.tasks['first']?.runner).toBe('solo');
    expect(slots()).toMatchObject({ capacity: 1, free: 1, idle: 0, running: 0 });
  });

  it('frees the slot of an execution the runner refused before starting it', async () => {
    // Artifacts on a runner without an object store: refused, nothing started.
    const handle = await h.start({
      name: 'refused',
      tasks: [task(h, 'keeps', ['true'], { artifacts: ['out'] })],
    });
    const s = await handle.result();
    expect(s.tasks['keeps']?.status).toBe('failed');
    expect(s.tasks['keeps']?.reason).toContain('has no object store');
    expect(slots()).toMatchObject({ free: 1, idle: 0 });
  });

  it('runs one-task runs queued behind a long one on a single slot, and leaves the slot free', async () => {
    const long = await h.start({ name: 'long', tasks: [task(h, 'hold', ['sleep 3'])] });
    const shorts = await Promise.all(
      [1, 2, 3, 4].map((i) => h.start({ name: `short-${i}`, tasks: [task(h, 't', ['true'])] })),
    );
    await long.result();
    for (const s of shorts) expect((await s.result()).result).toBe('success');
    expect(slots()).toMatchObject({ free: 1, idle: 0 });
  });
});
