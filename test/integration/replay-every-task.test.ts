/**
 * A run replayed at every workflow task: a control worker without a workflow cache replays the
 * whole history for each task, as a worker does after a failed workflow task (for one, too many
 * events buffered while it ran) or after a restart. Commands that depend on when something
 * resolved (a result checked with or without an await, a local activity's marker) come out in
 * another order and fail as nondeterminism; the run would stall. Many tasks at once on two
 * runners, a failure that skips a chain, a retry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunState } from '../../src/types';
import { startHarness, task, type Harness } from '../helpers/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    maxCachedWorkflows: 0,
    runners: [
      { name: 'replay-r1', slots: 8 },
      { name: 'replay-r2', slots: 8 },
    ],
  });
});
afterAll(async () => {
  await h?.stop();
});

describe('a run replayed at every workflow task (no workflow cache)', () => {
  it('ends as it would with one: 120 tasks at once, a skipped chain, a retry', async () => {
    const wide = Array.from({ length: 120 }, (_, i) => task(h, `w${i}`, ['true']));
    const handle = await h.start({
      name: 'replayed',
      group: '/test/replay-every-task',
      tasks: [
        ...wide,
        task(h, 'join', ['true'], { depends: wide.map((t) => t.name) }),
        task(h, 'build', ['exit 3']),
        task(h, 'deploy', ['true'], { depends: ['build'] }),
        task(h, 'notify', ['true'], { depends: [{ task: 'deploy', conditions: ['on_skipped'] }] }),
        task(h, 'flaky', ['exit 1'], { retry: { limit: 1, backoff: '1s' } }),
      ],
    });
    const s: RunState = await handle.result();
    const count = (status: string) => Object.values(s.tasks).filter((t) => t.status === status).length;
    expect(count('success')).toBe(122); // the 120, join, notify
    expect(s.tasks.build!.status).toBe('failed');
    expect(s.tasks.deploy!.status).toBe('skipped');
    expect(s.tasks.flaky!.status).toBe('failed');
    expect(s.tasks.flaky!.attempts).toBe(2);
    expect(Object.values(s.tasks).every((t) => t.attempts <= 2)).toBe(true);
    expect(s.result).toBe('failed');
    // No nondeterminism: every replay made the commands the first execution made (a workflow
    // task may still fail for other reasons on a busy machine, and is retried).
    const history = await handle.fetchHistory();
    const messages = (history.events ?? []).map((e) => e.workflowTaskFailedEventAttributes?.failure?.message ?? '');
    expect(messages.filter((m) => /nondetermin|TMPRL1100/i.test(m))).toEqual([]);
  });
});
