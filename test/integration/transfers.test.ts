/**
 * Artifacts and caches in the object store (issue 16), against moto's S3 and the real dev server:
 * artifacts passed between tasks on two runners with different state dirs, a cache missed then
 * hit on the next run and missed again when its key's file changes; a task that needs the store
 * on a runner without one, and artifacts that were never stored, fail with the reason.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunfleetClient } from '../../src/client/client';
import { startHarness, task, type Harness } from '../helpers/harness';
import { startRunfleet } from '../helpers/processes';
import { startS3, type TestS3 } from '../helpers/s3';
import { uniqueName } from '../helpers/temporal';

let s3: TestS3;
let h: Harness;
let rf: RunfleetClient;
const poolA = uniqueName('pool-a');
const poolB = uniqueName('pool-b');
beforeAll(async () => {
  s3 = await startS3();
  h = await startHarness({ runners: [], store: s3.store });
  rf = RunfleetClient.fromClient(h.client, { controlTaskQueue: h.controlQueue, address: h.address });
  const objectStore = { store: s3.store, intervalMs: 500 };
  await h.startRunner({ name: uniqueName('runner-a'), pool: poolA, objectStore });
  await h.startRunner({ name: uniqueName('runner-b'), pool: poolB, objectStore });
}, 120_000);
afterAll(async () => {
  await h?.stop();
  await s3?.stop();
});

/** Runs the CLI to its end; its output (stdout and stderr), failing the test on a non-zero exit. */
async function runCli(args: string[], env: Record<string, string>): Promise<string> {
  const proc = startRunfleet(args, { env, logFile: join(h.dataDir, `${uniqueName('cli')}.log`) });
  const code = await proc.exited;
  if (code !== 0) throw new Error(`runfleet ${args.join(' ')} exited ${code}:\n${proc.output()}`);
  return proc.output();
}

async function fullLog(runId: string, name: string): Promise<string> {
  let text = '';
  for (let offset = 0; ;) {
    const chunk = await rf.readTaskLog(runId, name, offset);
    text += chunk.data;
    if (chunk.nextOffset === offset) return text;
    offset = chunk.nextOffset;
  }
}

/** checkout (A) -> deps (B, cached on lock.txt) -> ship (A): artifacts cross runners both ways. */
function pipeline(group: string, lock: string) {
  return {
    name: 'pipeline',
    group,
    tasks: [
      task(
        h,
        'checkout',
        [`echo "${lock}" > lock.txt; mkdir -p src/deep; echo code > src/deep/main.c; ln -s main.c src/deep/link.c`],
        {
          pool: poolA,
          artifacts: ['lock.txt', 'src/**'],
        },
      ),
      task(
        h,
        'deps',
        [
          'test -L src/deep/link.c && cat src/deep/link.c',
          'if [ -d deps ]; then echo "deps: from the cache"; else mkdir deps && echo "built for $(cat lock.txt)" > deps/lib.txt && echo "deps: built"; fi',
          'echo "uid $(id -u)" > owner.txt; cp deps/lib.txt out.txt',
        ],
        {
          pool: poolB,
          depends: ['checkout'],
          artifacts_from: ['checkout'],
          cache: { key: 'deps-{{ hash lock.txt }}', paths: ['deps'] },
          artifacts: ['out.txt'],
        },
      ),
      task(h, 'ship', ['cat out.txt; rm out.txt && echo "could remove it"'], {
        pool: poolA,
        depends: ['deps'],
        artifacts_from: ['deps'],
      }),
    ],
  };
}

describe('artifacts and caches in the object store', () => {
  it('pass artifacts across runners; a cache misses, hits on the next run, and misses when its key file changes', async () => {
    const group = `/test/${uniqueName('cache')}`;
    const runs: { id: string; deps: string; ship: string }[] = [];
    for (const lock of ['v1', 'v1', 'v2']) {
      const started = Date.now();
      const handle = await h.start(pipeline(group, lock));
      const state = await h.waitFor(handle, (s) => s.phase === 'finished', 120_000);
      expect(state.result, JSON.stringify(state.tasks)).toBe('success');
      expect(state.tasks.checkout?.runner).not.toBe(state.tasks.deps?.runner);
      runs.push({
        id: handle.workflowId,
        deps: await fullLog(handle.workflowId, 'deps'),
        ship: await fullLog(handle.workflowId, 'ship'),
      });
      console.log(`run with lock ${lock}: ${Date.now() - started} ms`);
    }
    const [first, second, third] = runs as [(typeof runs)[0], (typeof runs)[0], (typeof runs)[0]];
    console.log(
      first.deps
        .split('\n')
        .filter((l) => l.startsWith('==> ') && !l.startsWith('==> step'))
        .join('\n'),
    );
    expect(first.deps).toMatch(/==> artifacts of checkout: \d+ entries restored/);
    expect(first.deps).toContain('code\n'); // through the symlink, kept as a link
    expect(first.deps).toMatch(/==> cache deps-[0-9a-f]{16}: not in the store/);
    expect(first.deps).toContain('deps: built');
    expect(first.deps).toMatch(/==> cache deps-[0-9a-f]{16}: 1 files \(\d+ bytes\) stored/);
    expect(first.ship).toContain('built for v1');
    // The restored files are the task's own: it can remove them.
    expect(first.ship).toContain('could remove it');

    expect(second.deps).toMatch(/==> cache deps-[0-9a-f]{16}: \d+ entries restored/);
    expect(second.deps).toContain('deps: from the cache');
    expect(second.ship).toContain('built for v1');

    // The CLI lists them and downloads one task's through a signed link (no store credentials here).
    const env = { TEMPORAL_ADDRESS: h.address, RUNFLEET_CONTROL_TASK_QUEUE: h.controlQueue };
    const list = await runCli(['run', 'artifacts', first.id, '--json'], env);
    expect((JSON.parse(list) as { task: string }[]).map((a) => a.task).sort()).toEqual(['checkout', 'deps']);
    const dir = join(h.dataDir, uniqueName('downloaded'));
    const got = await runCli(['run', 'artifacts', first.id, 'checkout', '--out', dir], env);
    console.log(got.trim());
    expect(readFileSync(join(dir, 'lock.txt'), 'utf8')).toBe('v1\n');
    expect(readlinkSync(join(dir, 'src', 'deep', 'link.c'))).toBe('main.c');

    expect(third.deps).toMatch(/not in the store/);
    expect(third.deps).toContain('deps: built');
    expect(third.ship).toContain('built for v2');
  }, 400_000);

  it('fails a task whose artifacts were never stored, or that needs a store on a runner without one, with the reason', async () => {
    const bare = uniqueName('pool-bare');
    await h.startRunner({ name: uniqueName('runner-bare'), pool: bare });
    const handle = await h.start({
      name: 'refused',
      tasks: [
        // Fails: its artifacts are not stored, and its dependent cannot get them.
        task(h, 'build', ['mkdir dist; echo x > dist/a; exit 1'], { pool: poolA, artifacts: ['dist/**'] }),
        task(h, 'use', ['true'], {
          pool: poolA,
          depends: [{ task: 'build', conditions: ['on_failure'] }],
          artifacts_from: ['build'],
        }),
        task(h, 'nostore', ['true'], { pool: bare, artifacts: ['x'] }),
        // Archived with the task's own rights, never root's: a file it cannot read is not stored.
        task(h, 'unreadable', ['mkdir dist; echo x > dist/a; chmod 000 dist/a'], {
          pool: poolA,
          artifacts: ['dist/**'],
        }),
      ],
    });
    const state = await h.waitFor(handle, (s) => s.phase === 'finished', 120_000);
    console.log(`use: ${state.tasks.use?.reason}\nnostore: ${state.tasks.nostore?.reason}`);
    expect(state.tasks.use?.status).toBe('failed');
    expect(state.tasks.use?.reason).toMatch(/the artifacts of task "build" are not in the object store/);
    expect(state.tasks.nostore?.status).toBe('failed');
    expect(state.tasks.nostore?.reason).toMatch(/has no object store \(store.bucket\)/);
    expect(state.tasks.unreadable?.status).toBe('success');
    const unreadable = await fullLog(handle.workflowId, 'unreadable');
    expect(unreadable).toMatch(/==> artifacts: not stored: .*dist\/a: Cannot open: Permission denied/);
  }, 200_000);
});
