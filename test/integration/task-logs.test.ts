/**
 * Task logs that outlive their runner (issue 16), against a real S3 endpoint (moto's server) and
 * the real dev server: shipped while the task runs, whole once it ends, read from the store when
 * the runner is gone, secrets masked on both paths, a store that is down at the task's end, and a
 * runner killed -9 mid-task whose log is still readable up to the kill.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RunfleetClient } from '../../src/client/client';
import type { ObjectStore } from '../../src/store/object-store';
import { readStoredLog } from '../../src/store/task-logs';
import { startHarness, task, type Harness } from '../helpers/harness';
import { killAll, registerRunner, serveRunner, startRunfleet } from '../helpers/processes';
import { startS3, type TestS3 } from '../helpers/s3';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

let s3: TestS3;
let h: Harness;
let rf: RunfleetClient;
beforeAll(async () => {
  s3 = await startS3();
  h = await startHarness({ runners: [], store: s3.store });
  rf = RunfleetClient.fromClient(h.client, { controlTaskQueue: h.controlQueue, address: h.address });
}, 120_000);
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  await h?.stop();
  await s3?.stop();
});

const SECRET = 'Zq9Xv7Wm3Pp5Tt1Rr8';
const MASKED = '*'.repeat(SECRET.length);

/** What the store holds of an attempt's log, read whole. */
async function stored(runId: string, taskName: string, attempt = 1) {
  return readStoredLog(s3.store, { runId, task: taskName, attempt, offset: 0, limit: 1 << 20 });
}

describe('task logs in the object store', () => {
  it('are shipped while the task runs, masked, and read from the store once the runner is gone', async () => {
    const name = uniqueName('shipper');
    const pool = uniqueName('pool');
    await h.startRunner({ name, pool, objectStore: { store: s3.store, intervalMs: 300 } });
    const handle = await h.start({
      name: 'ship',
      env: { DEPLOY_KEY: SECRET },
      secret_env: ['DEPLOY_KEY'],
      tasks: [
        task(
          h,
          'build',
          [
            // A partial line with the secret first: it must never be shown cut (and so unmasked).
            `printf 'key=%s' "$DEPLOY_KEY"; sleep 1; echo; echo started; sleep 4; echo "again $DEPLOY_KEY"; echo finished`,
          ],
          { pool },
        ),
      ],
    });
    const runId = handle.workflowId;
    // While it runs: the store already has what was written, and the runner's answer is masked.
    const early = await until(
      'the first lines in the store',
      async () => {
        const chunk = await stored(runId, 'build');
        return /^started$/m.test(chunk.data) && chunk;
      },
      { timeoutMs: 30_000, everyMs: 200 },
    );
    const during = await h.state(handle);
    console.log(
      `while ${during.tasks.build?.status}: the store had ${early.nextOffset} bytes, complete ${early.complete}`,
    );
    expect(during.tasks.build?.status).toBe('running');
    expect(early.complete).toBe(false);
    expect(early.data).toContain(`key=${MASKED}\nstarted\n`);
    const live = await rf.readTaskLog(runId, 'build');
    expect(live.source).toBe('runner');
    expect(live.data).toContain(`key=${MASKED}`);
    expect(live.data).not.toContain(SECRET);
    // A reader choosing windows that start or end inside the secret sees no piece of it.
    const at = early.data.indexOf(`key=${MASKED}`) + 4;
    const pieces = Array.from({ length: SECRET.length - 2 }, (_, i) => SECRET.slice(i, i + 3));
    for (const [offset, limit] of [
      [at + 1, 100],
      [at + 5, 4],
      [at - 3, 6],
      [at + SECRET.length - 2, 10],
    ] as const) {
      const window = await rf.readTaskLog(runId, 'build', offset, limit);
      expect(window.source).toBe('runner');
      expect(
        pieces.filter((p) => window.data.includes(p)),
        `offset ${offset}, limit ${limit}: ${window.data}`,
      ).toEqual([]);
    }

    await h.waitFor(handle, (s) => s.phase === 'finished');
    expect((await h.state(handle)).result).toBe('success');
    const whole = await until(
      'the whole log in the store',
      async () => {
        const chunk = await stored(runId, 'build');
        return chunk.complete && chunk;
      },
      { timeoutMs: 30_000, everyMs: 200 },
    );
    expect(whole.data).toContain(`key=${MASKED}\nstarted\nagain ${MASKED}\nfinished\n`);
    expect(whole.data).not.toContain(SECRET);

    // The runner goes away for good (a fleet instance terminated, a temporary runner purged).
    await h.stopRunner(name);
    const after = await rf.readTaskLog(runId, 'build');
    expect(after.source).toBe('store');
    expect(after.complete).toBe(true);
    expect(after.data).toBe(whole.data);
  });

  it("records the task's outcome when the store is down at its end; the upload is retried and says so", async () => {
    const name = uniqueName('outage');
    let down = true;
    let refused = 0;
    const flaky: ObjectStore = {
      ...s3.store,
      put: async (key, body) => {
        if (down) {
          refused++;
          throw new Error('connect ECONNREFUSED (the store is down)');
        }
        return s3.store.put(key, body);
      },
    };
    const lines: string[] = [];
    const pool = uniqueName('pool');
    await h.startRunner({
      name,
      pool,
      objectStore: { store: flaky, intervalMs: 300 },
      log: (line) => lines.push(line),
    });
    const handle = await h.start({ name: 'outage', tasks: [task(h, 'build', ['echo built; sleep 1'], { pool })] });
    const done = await h.waitFor(handle, (s) => s.phase === 'finished');
    expect(done.result).toBe('success');
    expect(done.tasks.build?.exitCode).toBe(0);
    expect((await stored(handle.workflowId, 'build')).exists).toBe(false);
    await until('the runner saying the upload failed', () => lines.some((l) => /upload failed.*tried again/.test(l)), {
      timeoutMs: 20_000,
      detail: () => lines.join('\n'),
    });
    down = false;
    const whole = await until(
      'the log in the store once it is back',
      async () => {
        const chunk = await stored(handle.workflowId, 'build');
        return chunk.complete && chunk;
      },
      { timeoutMs: 30_000, everyMs: 250 },
    );
    console.log(
      `${refused} uploads refused while the store was down; then: ${lines.filter((l) => /log of/.test(l)).pop()}`,
    );
    expect(whole.data).toMatch(/^built$/m);
    expect(lines.some((l) => /stored in .* after \d+ tries/.test(l))).toBe(true);
    await h.stopRunner(name);
  });

  it('keeps the log of a runner killed -9 mid-task up to the kill; run logs --follow ends on the lost task and says so', async () => {
    const name = uniqueName('killed');
    const pool = uniqueName('pool');
    const token = await registerRunner(h.client, h.controlQueue, { name, pool });
    const proc = serveRunner({ address: h.address, root: h.dataDir, name, pool, token, env: s3.env });
    await until('the runner serving', () => / serving pool /.test(proc.output()), {
      timeoutMs: 60_000,
      detail: () => proc.output(),
    });
    const handle = await h.start({
      name: 'killed',
      tasks: [task(h, 'count', ['for i in $(seq 1 600); do echo "line $i"; sleep 0.1; done'], { pool })],
    });
    const runId = handle.workflowId;
    await until('ten lines in the store', async () => /line 10\n/.test((await stored(runId, 'count')).data), {
      timeoutMs: 60_000,
      everyMs: 200,
      detail: () => proc.output(),
    });
    proc.kill('SIGKILL');
    await proc.exited;
    const kept = await stored(runId, 'count');
    const last = Number(/line (\d+)\n$/.exec(kept.data)?.[1]);
    console.log(`after kill -9 the store holds ${kept.nextOffset} bytes, up to "line ${last}"`);
    expect(last).toBeGreaterThanOrEqual(10);
    expect(kept.complete).toBe(false);

    await h.waitFor(handle, (s) => s.tasks.count?.status === 'lost', 60_000);
    const env = {
      TEMPORAL_ADDRESS: h.address,
      RUNFLEET_CONTROL_TASK_QUEUE: h.controlQueue,
    };
    const logFile = join(h.dataDir, `${name}.follow.log`);
    writeFileSync(logFile, '');
    const follow = startRunfleet(['run', 'logs', runId, 'count', '--follow'], { env, logFile });
    const code = await follow.exited;
    const output = follow.output();
    console.log(`run logs --follow exited ${code}; its last line: ${output.trim().split('\n').pop()}`);
    expect(code).toBe(0);
    expect(output).toContain(kept.data);
    expect(output).toMatch(/task count is lost: runner ".*" is gone and had not finished shipping this log/);
  });

  it('a runner restarted after kill -9 ships the rest of a task it re-attaches to, and keeps its outputs', async () => {
    const name = uniqueName('resumed');
    const pool = uniqueName('pool');
    const token = await registerRunner(h.client, h.controlQueue, { name, pool });
    const serve = (withToken: boolean) =>
      serveRunner({ address: h.address, root: h.dataDir, name, pool, ...(withToken ? { token } : {}), env: s3.env });
    const first = serve(true);
    await until('the runner serving', () => / serving pool /.test(first.output()), {
      timeoutMs: 60_000,
      detail: () => first.output(),
    });
    const handle = await h.start({
      name: 'resumed',
      tasks: [
        task(
          h,
          'count',
          ['for i in $(seq 1 80); do echo "line $i"; sleep 0.1; done; echo "lines=80" >> "$RUNFLEET_OUTPUT"'],
          {
            pool,
          },
        ),
      ],
    });
    const runId = handle.workflowId;
    await until('five lines in the store', async () => /line 5\n/.test((await stored(runId, 'count')).data), {
      timeoutMs: 60_000,
      everyMs: 200,
    });
    first.kill('SIGKILL');
    await first.exited;
    const second = serve(false);
    const done = await h.waitFor(handle, (s) => s.phase === 'finished', 90_000);
    expect(done.result, second.output()).toBe('success');
    expect(done.tasks.count?.outputs).toEqual({ lines: '80' });
    const whole = await until(
      'the whole log in the store',
      async () => {
        const chunk = await stored(runId, 'count');
        return chunk.complete && chunk;
      },
      { timeoutMs: 30_000, everyMs: 250, detail: () => second.output() },
    );
    const numbers = [...whole.data.matchAll(/^line (\d+)$/gm)].map((m) => Number(m[1]));
    console.log(`after the restart the store holds lines ${numbers[0]}-${numbers.at(-1)} (${numbers.length} lines)`);
    expect(numbers).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
  });
});
