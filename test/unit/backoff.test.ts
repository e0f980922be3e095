import { describe, expect, it } from 'vitest';
import { backoff } from '../../src/backoff';
import { sleep } from '../../src/sleep';

/** Every wait in these tests that must be cut short is a minute: passing at all proves it was. */
const MINUTE = 60_000;

describe('backoff', () => {
  it('doubles the wait from initialMs up to maxMs, one step per attempt', async () => {
    const steps = [];
    for await (const step of backoff({ initialMs: 1, maxMs: 8 })) {
      steps.push(step);
      if (steps.length === 6) break;
    }
    expect(steps.map((s) => s.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(steps.map((s) => s.delayMs)).toEqual([1, 2, 4, 8, 8, 8]);
  });

  it('makes the first attempt at once and waits for nothing when the loop is left', async () => {
    const started = Date.now();
    for await (const { attempt } of backoff({ initialMs: MINUTE, maxMs: MINUTE })) {
      expect(attempt).toBe(1);
      break;
    }
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('ends, without an error, as soon as its signal aborts, even mid-wait', async () => {
    const stop = new AbortController();
    const attempts: number[] = [];
    for await (const { attempt } of backoff({ initialMs: MINUTE, maxMs: MINUTE, signal: stop.signal })) {
      attempts.push(attempt);
      setTimeout(() => stop.abort(), 10);
    }
    expect(attempts).toEqual([1]);

    for await (const _ of backoff({ initialMs: 1, maxMs: 1, signal: stop.signal })) attempts.push(0);
    expect(attempts).toEqual([1]); // an aborted signal: no attempt at all
  });
});

describe('sleep', () => {
  it('waits', async () => {
    const started = Date.now();
    await sleep(50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('resolves, not rejects, when its signal aborts, and at once when it was already aborted', async () => {
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 10);
    await expect(sleep(MINUTE, stop.signal)).resolves.toBeUndefined();
    await expect(sleep(MINUTE, stop.signal)).resolves.toBeUndefined();
  });
});
