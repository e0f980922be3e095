import { describe, expect, it } from 'vitest';
import { until } from '../helpers/until';

describe('until', () => {
  it('returns the first value that is not undefined, null or false', async () => {
    let n = 0;
    const got = await until('the third call', () => (++n >= 3 ? { n } : n === 1 ? null : false), { everyMs: 5 });
    expect(got).toEqual({ n: 3 });
  });

  it('treats a throw as not yet and returns once the check passes', async () => {
    let n = 0;
    const got = await until(
      'an async check',
      async () => {
        n++;
        if (n < 3) throw new Error(`not yet ${n}`);
        return 'ok';
      },
      { everyMs: 5 },
    );
    expect(got).toBe('ok');
    expect(n).toBe(3);
  });

  it('times out naming what it waited for, the last error and the detail', async () => {
    const started = Date.now();
    const err = await until(
      'the gate file',
      () => {
        throw new Error('ENOENT gate');
      },
      { timeoutMs: 150, everyMs: 20, detail: () => 'runner output: nothing yet' },
    ).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/timed out after 150 ms waiting for the gate file; last error: ENOENT gate/);
    expect((err as Error).message).toMatch(/runner output: nothing yet/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('takes a bare number as the timeout, and returns 0 and empty strings as values', async () => {
    expect(await until('zero', () => 0, 50)).toBe(0);
    expect(await until('empty', () => '', 50)).toBe('');
    await expect(until('never', () => false, 60)).rejects.toThrow(/timed out after 60 ms waiting for never/);
  });
});
