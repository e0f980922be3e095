/**
 * Task outputs (issue 16) on the real dev server: a task writes `KEY=value` lines to
 * `$RUNFLEET_OUTPUT`, they travel in its result, `run show` lists them, and the tasks that depend
 * on it get them as `RUNFLEET_NEEDS_<TASK>_<KEY>`. The file is the task's and read by a root
 * runner: a link to the runner's secrets, a hard link, or too much gives no outputs, and the
 * task's log says why.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunfleetClient } from '../../src/client/client';
import { runDetails } from '../../src/cli/render';
import { startHarness, task, type Harness } from '../helpers/harness';
import { uniqueName } from '../helpers/temporal';

let h: Harness;
let rf: RunfleetClient;
beforeAll(async () => {
  h = await startHarness({ runners: [{ name: uniqueName('outputs') }] });
  rf = RunfleetClient.fromClient(h.client, { controlTaskQueue: h.controlQueue, address: h.address });
});
afterAll(async () => {
  await h?.stop();
});

describe('task outputs', () => {
  it('reach the dependents as variables and run show; a link, a hard link or too much is refused', async () => {
    // A file only the runner (root) may read: a task that links its output file there gets nothing.
    const secret = join(h.dataDir, 'runner-only.txt');
    writeFileSync(secret, 'STOLEN=runner-secret\n', { mode: 0o600 });
    const got = join(h.dataDir, `${uniqueName('got')}.txt`);
    const handle = await h.start({
      name: 'outputs',
      tasks: [
        task(h, 'build', [
          'echo "version=1.2.3" >> "$RUNFLEET_OUTPUT"; echo "digest=sha256:abc" >> "$RUNFLEET_OUTPUT"',
        ]),
        task(h, 'use', [`echo "$RUNFLEET_NEEDS_BUILD_VERSION $RUNFLEET_NEEDS_BUILD_DIGEST" > ${got}`], {
          depends: ['build'],
        }),
        task(h, 'link', [`ln -s ${secret} "$RUNFLEET_OUTPUT"`]),
        task(h, 'hardlink', ['echo "a=1" > mine; ln mine "$RUNFLEET_OUTPUT"']),
        task(h, 'big', ['head -c 2000 /dev/zero | tr "\\0" x | sed "s/^/blob=/" > "$RUNFLEET_OUTPUT"']),
      ],
    });
    const state = await h.waitFor(handle, (s) => s.phase === 'finished');
    expect(state.result).toBe('success');
    expect(state.tasks.build?.outputs).toEqual({ version: '1.2.3', digest: 'sha256:abc' });
    expect(readFileSync(got, 'utf8')).toBe('1.2.3 sha256:abc\n');
    const shown = runDetails(state);
    console.log(shown.slice(shown.indexOf('outputs')));
    expect(shown).toContain('outputs\n  build  version=1.2.3\n  build  digest=sha256:abc');

    const refusals: Record<string, string> = {
      link: 'it is a symbolic link',
      hardlink: 'it has other names (a hard link)',
      big: "2004 bytes; a task's outputs are at most 1024",
    };
    for (const [name, why] of Object.entries(refusals)) {
      expect(state.tasks[name]?.outputs, name).toBeUndefined();
      const log = await rf.readTaskLog(handle.workflowId, name);
      expect(log.data, name).toContain(`==> outputs ignored ($RUNFLEET_OUTPUT): ${why}`);
      expect(log.data).not.toContain('runner-secret');
    }
  });
});
