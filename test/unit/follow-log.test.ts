/** `runner logs --follow` (followLog): the tail, then every line appended after it, none skipped. */
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { followLog } from '../../src/runner/daemon';
import { until } from '../helpers/until';

describe('followLog', () => {
  it('prints a line appended the moment the tail is out (a reader acting on the tail at once)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'runfleet-follow-')), 'runner.log');
    writeFileSync(file, 'one\ntwo\n');
    const stop = new AbortController();
    let printed = '';
    const following = followLog(file, {
      lines: 1,
      intervalMs: 20,
      signal: stop.signal,
      write: (chunk) => {
        // The first write is the tail: append right then, before followLog goes on.
        if (printed === '') appendFileSync(file, 'appended at once\n');
        printed += chunk;
      },
    });
    await until('the appended line', () => printed.includes('appended at once\n'), { timeoutMs: 5_000, everyMs: 20 });
    stop.abort();
    await following.catch(() => undefined);
    expect(printed).toBe('two\nappended at once\n');
  });
});
