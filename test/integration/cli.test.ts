/** The `runfleet` CLI as a user runs it, against the real dev server and runners. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunState } from '../../src/types';
import { startHarness, type Harness } from '../helpers/harness';
import { sharedDir, sharedFile } from '../helpers/shared-files';
import { NO_KEY_FILE, runCli, type CliResult } from '../helpers/processes';
import { temporalHttpAddress, uniqueName } from '../helpers/temporal';
import { TEST_OPERATOR_KEY_FILE } from '../helpers/operator-key';

let h: Harness;
let group: string;
beforeAll(async () => {
  h = await startHarness({ runners: [{ name: uniqueName('cli-runner'), slots: 4 }] });
  group = `/cli/${uniqueName('g')}`;
});
afterAll(async () => {
  await h?.stop();
});

function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, h, {
    // The checkout's own data keys (from a `runfleet up` here) would encrypt what the harness cannot read.
    RUNFLEET_KEY_FILE: NO_KEY_FILE,
    // The suite's operator key: `run approve` signs with it, the harness's control worker trusts it.
    RUNFLEET_OPERATOR_KEY_FILE: TEST_OPERATOR_KEY_FILE,
    ...env,
  });
}

function runFile(name: string, body: unknown): string {
  const file = join(h.dataDir, `${name}.json`);
  writeFileSync(file, JSON.stringify(body));
  return file;
}

describe('runfleet run', () => {
  it('submits, waits and prints the final state as JSON; show, list and logs find it', async () => {
    const file = runFile('good', {
      name: 'cli good',
      group,
      tasks: [
        { name: 'hello', pool: h.pool, steps: ['echo hello from $RUNFLEET_TASK', 'echo second step >&2'] },
        { name: 'after', pool: h.pool, steps: ['true'], depends: ['hello'] },
      ],
    });
    const submit = await cli(['run', 'submit', file, '--wait', '--json']);
    expect(submit.code).toBe(0);
    // Progress goes to stderr; stdout is only the JSON.
    expect(submit.stderr).toContain('submitted run/cli/');
    const state = JSON.parse(submit.stdout) as RunState;
    expect(state.group).toBe(group);
    expect(state.phase).toBe('finished');
    expect(state.result).toBe('success');
    expect(state.id.startsWith(`run${group}/`)).toBe(true);
    expect(Object.keys(state.tasks).sort()).toEqual(['after', 'hello']);
    for (const t of Object.values(state.tasks)) {
      expect(t.status).toBe('success');
      expect(t.exitCode).toBe(0);
      expect(Number.isNaN(Date.parse(t.startedAt ?? ''))).toBe(false);
      expect(Number.isNaN(Date.parse(t.finishedAt ?? ''))).toBe(false);
    }

    const show = await cli(['run', 'show', state.id, '--json']);
    expect(show.code).toBe(0);
    expect((JSON.parse(show.stdout) as RunState).tasks.hello!.status).toBe('success');

    const list = await cli(['run', 'list', '--group', group, '--result', 'success', '--json']);
    expect(list.code).toBe(0);
    const ids = (JSON.parse(list.stdout) as { runs: { id: string }[] }).runs.map((r) => r.id);
    expect(ids).toContain(state.id);

    const logs = await cli(['run', 'logs', state.id, 'hello']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('hello from hello');
    expect(logs.stdout).toContain('second step');
  });

  it('exits 1 with --wait when the run fails', async () => {
    const file = runFile('failing', {
      name: 'cli failing',
      group,
      tasks: [{ name: 'boom', pool: h.pool, steps: ['exit 7'] }],
    });
    const submit = await cli(['run', 'submit', file, '--wait', '--json']);
    expect(submit.code).toBe(1);
    const state = JSON.parse(submit.stdout) as RunState;
    expect(state.result).toBe('failed');
    expect(state.tasks.boom!.exitCode).toBe(7);
  });

  it('rejects a bad run file with one line per problem, exit 2, and starts nothing', async () => {
    const badGroup = `/cli/${uniqueName('bad')}`;
    const file = runFile('bad', {
      name: 'bad',
      group: badGroup,
      tasks: [
        { name: 'a', steps: ['true'], depends: ['b'] },
        { name: 'b', steps: ['true'], depends: ['a'] },
      ],
    });
    const submit = await cli(['run', 'submit', file]);
    expect(submit.code).toBe(2);
    expect(submit.stderr).toContain('dependency cycle');
    expect(submit.stderr).toMatch(/a -> b -> a|b -> a -> b/);
    const list = await cli(['run', 'list', '--group', badGroup, '--json']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual({ runs: [], nextPageToken: null });
  });

  it('rejects a bad flag value with a clear message and exit 2', async () => {
    const r = await cli(['run', 'list', '--phase', 'sleeping']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('sleeping');
    expect(r.stderr).toContain('running');
  });

  it('cancels a running run', async () => {
    const file = runFile('long', {
      name: 'cli long',
      group,
      tasks: [{ name: 'sleepy', pool: h.pool, steps: ['sleep 60'] }],
    });
    const submit = await cli(['run', 'submit', file, '--json']);
    expect(submit.code).toBe(0);
    const { id, workflowId } = JSON.parse(submit.stdout) as { id: string; workflowId: string };
    // One id: what submit prints is what show, list and the state say, and what every command takes.
    expect(id).toBe(workflowId);
    expect(id.startsWith(`run${group}/`)).toBe(true);
    const handle = h.client.workflow.getHandle(workflowId);
    await h.waitFor(handle, (s) => s.tasks.sleepy?.status === 'running');
    const cancel = await cli(['run', 'cancel', workflowId, '--reason', 'wrong branch', '--by', 'carol']);
    expect(cancel.code).toBe(0);
    const show = await cli(['run', 'watch', workflowId]);
    expect(show.code).toBe(1);
    const state = JSON.parse((await cli(['run', 'show', workflowId, '--json'])).stdout) as RunState;
    expect(state.id).toBe(id);
    expect(state.result).toBe('stopped');
    expect(state.phase).toBe('finished');
    expect(state.reason).toBe('stopped by carol: wrong branch');
    expect(state.tasks.sleepy!.status).toBe('cancelled');
    expect(state.tasks.sleepy!.reason).toContain('killed the task');
  });

  it('restarts a failed run from its failed tasks: succeeded tasks are kept, not run again', async () => {
    // Tasks are users of their own: each writes its count, and b its marker, in a folder of the test's.
    const dir = sharedDir('runfleet-restart-');
    for (const n of ['a', 'b', 'c', 'd']) sharedFile(dir, `${n}.count`);
    const count = (n: string) => `echo x >> ${dir}/${n}.count`;
    const file = runFile('restart', {
      name: 'cli restart',
      group,
      tasks: [
        { name: 'a', pool: h.pool, steps: [count('a')] },
        // Fails the first time only: the marker is there on the second.
        {
          name: 'b',
          pool: h.pool,
          steps: [count('b'), `test -f ${dir}/marker || { touch ${dir}/marker; exit 1; }`],
          depends: ['a'],
        },
        { name: 'c', pool: h.pool, steps: [count('c')], depends: ['b'] },
        { name: 'd', pool: h.pool, steps: [count('d')] },
      ],
    });
    const first = await cli(['run', 'submit', file, '--wait', '--json']);
    expect(first.code).toBe(1);
    const old = JSON.parse(first.stdout) as RunState;
    expect(Object.fromEntries(Object.entries(old.tasks).map(([k, t]) => [k, t.status]))).toEqual({
      a: 'success',
      b: 'failed',
      c: 'skipped',
      d: 'success',
    });

    const again = await cli(['run', 'restart', old.id, '--wait', '--json']);
    expect(again.code).toBe(0);
    const restarted = JSON.parse(again.stdout) as RunState;
    expect(restarted.id).not.toBe(old.id);
    expect(restarted.restartOf).toBe(old.id);
    expect(restarted.result).toBe('success');
    expect(restarted.tasks.a!.reason).toContain(`kept from ${old.id}`);
    expect(restarted.tasks.a!.startedAt).toBe(old.tasks.a!.startedAt);
    const counts = Object.fromEntries(
      ['a', 'b', 'c', 'd'].map((n) => [
        n,
        readFileSync(join(dir, `${n}.count`), 'utf8')
          .split('\n')
          .filter(Boolean).length,
      ]),
    );
    expect(counts).toEqual({ a: 1, b: 2, c: 1, d: 1 });

    const running = await cli(['run', 'restart', restarted.id, '--from', 'sideways']);
    expect(running.code).toBe(2);
    expect(running.stderr).toContain('use failed or scratch');
  });

  it('restarts a failed run from scratch: every task runs again, none is kept', async () => {
    const dir = sharedDir('runfleet-scratch-');
    for (const n of ['a', 'b', 'c', 'd']) sharedFile(dir, `${n}.count`);
    const count = (n: string) => `echo x >> ${dir}/${n}.count`;
    const file = runFile('scratch', {
      name: 'cli scratch',
      group,
      tasks: [
        { name: 'a', pool: h.pool, steps: [count('a')] },
        {
          name: 'b',
          pool: h.pool,
          steps: [count('b'), `test -f ${dir}/marker || { touch ${dir}/marker; exit 1; }`],
          depends: ['a'],
        },
        { name: 'c', pool: h.pool, steps: [count('c')], depends: ['b'] },
        { name: 'd', pool: h.pool, steps: [count('d')] },
      ],
    });
    const first = await cli(['run', 'submit', file, '--wait', '--json']);
    expect(first.code).toBe(1);
    const old = JSON.parse(first.stdout) as RunState;
    expect(old.tasks.b!.status).toBe('failed');

    const again = await cli(['run', 'restart', old.id, '--from', 'scratch', '--wait', '--json']);
    expect(again.code, again.stderr).toBe(0);
    const restarted = JSON.parse(again.stdout) as RunState;
    expect(restarted.restartOf).toBe(old.id);
    expect(restarted.result).toBe('success');
    for (const n of ['a', 'b', 'c', 'd']) {
      const t = restarted.tasks[n]!;
      expect(t.status, n).toBe('success');
      expect(t.attempts, n).toBe(1);
      expect(t.reason ?? '', n).not.toContain('kept from');
    }
    // Succeeded before, executed again all the same: a new start, after the old run's.
    for (const n of ['a', 'd'])
      expect(Date.parse(restarted.tasks[n]!.startedAt!), n).toBeGreaterThan(Date.parse(old.tasks[n]!.finishedAt!));
    const counts = Object.fromEntries(
      ['a', 'b', 'c', 'd'].map((n) => [
        n,
        readFileSync(join(dir, `${n}.count`), 'utf8')
          .split('\n')
          .filter(Boolean).length,
      ]),
    );
    expect(counts).toEqual({ a: 2, b: 2, c: 1, d: 2 });
  });

  it('lists a group page by page, counts it, and filters by start time', async () => {
    const pageGroup = `/cli/${uniqueName('pages')}`;
    const file = runFile('page', {
      name: 'page',
      group: pageGroup,
      tasks: [{ name: 't', pool: h.pool, steps: ['true'] }],
    });
    const before = new Date().toISOString();
    for (let i = 0; i < 3; i++) expect((await cli(['run', 'submit', file, '--wait'])).code).toBe(0);

    const seen: string[] = [];
    let token: string | null = null;
    for (let page = 0; page < 5; page++) {
      const args = ['run', 'list', '--group', pageGroup, '--limit', '2', '--json'];
      const r = await cli(token ? [...args, '--page-token', token] : args);
      expect(r.code).toBe(0);
      const body = JSON.parse(r.stdout) as { runs: { id: string }[]; nextPageToken: string | null };
      expect(body.runs.length).toBeLessThanOrEqual(2);
      seen.push(...body.runs.map((x) => x.id));
      token = body.nextPageToken;
      if (!token) break;
    }
    expect(seen).toHaveLength(3);
    expect(new Set(seen).size).toBe(3);

    const count = await cli(['run', 'list', '--group', pageGroup, '--count', '--json']);
    expect(JSON.parse(count.stdout)).toEqual({ count: 3 });
    const none = await cli(['run', 'list', '--group', pageGroup, '--until', before, '--count']);
    expect(none.stdout.trim()).toBe('0');
    const bad = await cli(['run', 'list', '--since', 'yesterday-ish']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('is not a time');
  });

  it("lists and counts through Temporal's HTTP API exactly as through gRPC", async () => {
    const httpGroup = `/cli/${uniqueName('http')}`;
    const good = runFile('http-good', {
      name: 'http good',
      group: httpGroup,
      tasks: [{ name: 't', pool: h.pool, steps: ['true'] }],
    });
    const bad = runFile('http-bad', {
      name: 'http bad',
      group: httpGroup,
      tasks: [{ name: 't', pool: h.pool, steps: ['exit 3'] }],
    });
    expect((await cli(['run', 'submit', good, '--wait'])).code).toBe(0);
    expect((await cli(['run', 'submit', bad, '--wait'])).code).toBe(1);
    const http = { RUNFLEET_HTTP_ADDRESS: temporalHttpAddress() };

    const list = ['run', 'list', '--group', httpGroup];
    for (const args of [
      [...list, '--json'],
      list,
      [...list, '--result', 'failed', '--json'],
      [...list, '--phase', 'finished', '--count', '--json'],
      [...list, '--limit', '1', '--json'],
    ]) {
      const viaGrpc = await cli(args);
      const viaHttp = await cli(args, http);
      expect(viaHttp.code, viaHttp.stderr).toBe(0);
      expect(viaHttp.stdout, args.join(' ')).toBe(viaGrpc.stdout);
    }
    const runs = (
      JSON.parse((await cli([...list, '--json'], http)).stdout) as { runs: { name: string; result: string }[] }
    ).runs;
    expect(runs.map((r) => `${r.name}: ${r.result}`).sort()).toEqual(['http bad: failed', 'http good: success']);
    expect(JSON.parse((await cli([...list, '--count', '--json'], http)).stdout)).toEqual({ count: 2 });
    // A page token from one way reads the next page the other way.
    const first = JSON.parse((await cli([...list, '--limit', '1', '--json'], http)).stdout) as {
      nextPageToken: string;
    };
    const second = await cli([...list, '--limit', '1', '--json', '--page-token', first.nextPageToken]);
    expect((JSON.parse(second.stdout) as { runs: unknown[] }).runs).toHaveLength(1);

    // Nothing answers there: the error names the address and the setting.
    const down = await cli(list, { RUNFLEET_HTTP_ADDRESS: '127.0.0.1:1' });
    expect(down.code).not.toBe(0);
    expect(down.stderr).toContain("cannot reach Temporal's HTTP API at 127.0.0.1:1 (RUNFLEET_HTTP_ADDRESS)");
    // Not an address: refused before anything is asked.
    const url = await cli(list, { RUNFLEET_HTTP_ADDRESS: 'http://evil.example/x' });
    expect(url.code).toBe(2);
    expect(url.stderr).toContain('RUNFLEET_HTTP_ADDRESS');
    expect(url.stderr).toContain('must be host:port');
    // gRPC metadata has no place in the HTTP API: with some set, the command keeps to gRPC.
    const meta = await cli([...list, '--count'], {
      RUNFLEET_HTTP_ADDRESS: '127.0.0.1:1',
      TEMPORAL_GRPC_META_X_TEAM: 'ci',
    });
    expect(meta.code, meta.stderr).toBe(0);
    expect(meta.stdout.trim()).toBe('2');
  });

  it('holds a needs_approval task until approved from the CLI, and records who approved', async () => {
    const file = runFile('approval', {
      name: 'cli approval',
      group,
      tasks: [
        { name: 'build', pool: h.pool, steps: ['true'] },
        { name: 'deploy', pool: h.pool, steps: ['true'], depends: ['build'], needs_approval: true },
      ],
    });
    const submit = await cli(['run', 'submit', file, '--json']);
    const { id, workflowId } = JSON.parse(submit.stdout) as { id: string; workflowId: string };
    // One id: what submit prints is what show, list and the state say, and what every command takes.
    expect(id).toBe(workflowId);
    expect(id.startsWith(`run${group}/`)).toBe(true);
    const handle = h.client.workflow.getHandle(workflowId);
    await h.waitFor(handle, (s) => s.tasks.build?.status === 'success');
    await new Promise((r) => setTimeout(r, 500));
    expect((await h.state(handle)).tasks.deploy!.status).toBe('pending');

    const early = await cli(['run', 'approve', workflowId, 'build', '--by', 'alice']);
    expect(early.code).toBe(2);
    expect(early.stderr).toContain('does not need approval');

    const approve = await cli(['run', 'approve', workflowId, 'deploy', '--by', 'alice']);
    expect(approve.code).toBe(0);
    expect((await cli(['run', 'watch', workflowId])).code).toBe(0);
    const final = JSON.parse((await cli(['run', 'show', workflowId, '--json'])).stdout) as RunState;
    expect(final.result).toBe('success');
    expect(final.tasks.deploy!.approval.approvedBy).toBe('alice');
    expect(Date.parse(final.tasks.deploy!.startedAt!)).toBeGreaterThanOrEqual(
      Date.parse(final.tasks.deploy!.approval.approvedAt!),
    );
  });
});
