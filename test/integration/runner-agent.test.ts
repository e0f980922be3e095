/**
 * Registered runners as real `runfleet runner serve` processes against the real dev server:
 * tokens, encryption end to end, disable / enable, kill -9 and SIGTERM and the truth the runner
 * reports when it comes back, purge. The control worker holds a data key, so every payload is encrypted.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing, createKeyFile, readKeyFile } from '../../src/codec';
import type { RunnerAdmin } from '../../src/client/runners';
import { ensureTemporalBinary } from '../../src/server/temporal-binary';
import type { RunState } from '../../src/types';
import { startHarness, task, testRunnerAdmin, tokenSecret, type Harness } from '../helpers/harness';
import { fileLines, sharedFile } from '../helpers/shared-files';
import { killAll, registerRunner, runfleetBin, runnerStateDir, serveRunner, type Proc } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

const projectRoot = resolve(__dirname, '..', '..');
const execFileAsync = promisify(execFile);
/** Fast registry timings: idle after 4 s without heartbeat, lost 8 s later. */
const SETTINGS = { slots: 2, heartbeatMs: 1_000, pingMs: 1_000, watchdogMs: 6_000 };

let h: Harness;
let admin: RunnerAdmin;
let temporal: string;
let keyFile: string;
beforeAll(async () => {
  // The data keys in a file too, for the CLI commands the tests run.
  keyFile = join(mkdtempSync(join(tmpdir(), 'runfleet-keys-')), 'runfleet.keys');
  createKeyFile(keyFile);
  h = await startHarness({ runners: [], keys: new KeyRing(readKeyFile(keyFile)) });
  admin = testRunnerAdmin(h.client, h.controlQueue);
  temporal = await ensureTemporalBinary({ projectRoot });
});
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  await h?.stop();
});

async function readyz(
  proc: Proc,
): Promise<{ status: number; body: { ready: boolean; reason: string; state: string } }> {
  const port = await until(
    'the health port',
    // The log file is shared by the runner's successive processes: the last port is this one's.
    () => [...proc.output().matchAll(/health: http:\/\/127\.0\.0\.1:(\d+)\/livez/g)].pop()?.[1],
    60_000,
  );
  const r = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: r.status, body: (await r.json()) as { ready: boolean; reason: string; state: string } };
}

/**
 * The CLI against the harness (its control queue and data keys); stdout. Asynchronous: the
 * harness's control worker lives in this process and must answer the CLI's queries meanwhile.
 */
async function cli(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, [runfleetBin, ...args], {
    encoding: 'utf8',
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: h.address,
      RUNFLEET_CONTROL_TASK_QUEUE: h.controlQueue,
      RUNFLEET_KEY_FILE: keyFile,
    },
  });
  return stdout;
}

const lines = (file: string): number => fileLines(file).length;
const runnerDir = (name: string) => runnerStateDir(h.dataDir, name);
const serve = (name: string, token?: string): Proc =>
  serveRunner({ address: h.address, root: h.dataDir, name, pool: h.pool, ...(token ? { token } : {}), healthPort: 0 });

/** A runner registered with SETTINGS and serving, ready on /readyz. */
async function readyRunner(prefix: string): Promise<{ name: string; proc: Proc }> {
  const name = uniqueName(prefix);
  const token = await registerRunner(h.client, h.controlQueue, { name, pool: h.pool, settings: SETTINGS });
  const proc = serve(name, token);
  await until('the runner ready', async () => (await readyz(proc)).status === 200, 60_000);
  return { name, proc };
}

describe('registered runners', () => {
  it('refuses wrong, revoked and expired tokens without running anything, then registers and runs encrypted work', async () => {
    const name = uniqueName('reg');
    const first = await registerRunner(h.client, h.controlQueue, { name, pool: h.pool, settings: SETTINGS });
    const counter = sharedFile(h.dataDir, `${name}.count`);
    const secret = `s3cret-${name}`;
    const handle = await h.start({
      name: 'encrypted',
      group: '/test/agent',
      env: { DEPLOY_SECRET: secret },
      tasks: [task(h, 'deploy', [`echo "${secret}" >> ${counter}`, 'test "$DEPLOY_SECRET" = "' + secret + '"'])],
    });

    // A wrong token: retried with a clear line, never ready, nothing runs.
    let proc = serve(name, 'rfr_0000000000000000_wrong');
    await until('a token rejection', () => /token rejected: /.test(proc.output()), 60_000);
    const wrong = await readyz(proc);
    expect(wrong.status).toBe(503);
    expect(wrong.body.reason).toMatch(/token rejected/);
    proc.kill('SIGTERM');
    expect(await proc.exited).toBe(0);

    // Revoked.
    await admin.revokeToken(name, { by: 'test' });
    proc = serve(name, first);
    await until('the revoked token refused', () => /token rejected: .*revoked/.test(proc.output()), 60_000);
    proc.kill('SIGTERM');
    await proc.exited;

    // Expired.
    const short = await admin.issueToken(name, { ttlMs: 1_000, by: 'test' });
    await new Promise((r) => setTimeout(r, 1_500));
    proc = serve(name, short.token);
    await until('the expired token refused', () => /token rejected: .*expired/.test(proc.output()), 60_000);
    proc.kill('SIGTERM');
    await proc.exited;
    expect(lines(counter)).toBe(0);
    expect((await h.state(handle)).tasks.deploy!.status).toBe('pending');

    // The right token: registered, ready, and the waiting run goes through.
    const good = await admin.issueToken(name, { by: 'test' });
    proc = serve(name, good.token);
    await until(
      'the runner ready',
      async () => {
        const r = await readyz(proc);
        if (r.status !== 200) throw new Error(JSON.stringify(r.body));
        return true;
      },
      60_000,
    );
    const s: RunState = await handle.result();
    expect(s.result).toBe('success');
    expect(lines(counter)).toBe(1);
    expect(proc.output()).toMatch(new RegExp(`runner ${name} registered with the fleet`));
    expect(proc.output()).not.toContain(good.token);

    // History read without the key: no script, no env value, no token.
    const raw = execFileSync(
      temporal,
      ['workflow', 'show', '--address', h.address, '--workflow-id', handle.workflowId, '--output', 'json'],
      { encoding: 'utf8' },
    );
    // The CLI prints metadata values in base64.
    expect(raw).toContain(Buffer.from('binary/encrypted').toString('base64'));
    expect(raw).not.toContain(secret);
    const registry = execFileSync(
      temporal,
      ['workflow', 'show', '--address', h.address, '--workflow-id', `runner/${name}`, '--output', 'json'],
      { encoding: 'utf8' },
    );
    expect(registry).not.toContain(tokenSecret(good.token));

    // Registered: a restart needs no token.
    proc.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    proc = serve(name);
    await until('the runner ready again without a token', async () => (await readyz(proc)).status === 200, 60_000);
    expect((await admin.get(name)).status).toBe('ready');
  }, 240_000);

  it('drains when disabled, resumes when enabled, and wipes itself when purged', async () => {
    const { name, proc } = await readyRunner('drain');
    const done = sharedFile(h.dataDir, `${name}.done`);

    const a = await h.start({
      name: 'a',
      group: '/test/agent',
      tasks: [task(h, 'slow', ['sleep 3', `echo a >> ${done}`])],
    });
    await h.waitFor(a, (s) => s.tasks.slow?.status === 'running' || s.tasks.slow?.status === 'reserved');
    await admin.disable(name, { by: 'test', reason: 'maintenance' });
    await until(
      'not ready while disabled',
      async () => {
        const r = await readyz(proc);
        return r.status === 503 && /disabled/.test(r.body.reason);
      },
      60_000,
    );
    // The running task finishes (drain); new work waits.
    expect((await a.result()).result).toBe('success');
    const b = await h.start({ name: 'b', group: '/test/agent', tasks: [task(h, 'next', [`echo b >> ${done}`])] });
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await h.state(b)).tasks.next!.status).toBe('pending');
    expect(lines(done)).toBe(1);

    await admin.enable(name, { by: 'test' });
    expect((await b.result()).result).toBe('success');
    expect(lines(done)).toBe(2);

    // Purge: the runner wipes its state directory and exits 0.
    const purged = await admin.purge(name, { by: 'test', reason: 'decommissioned' });
    expect(purged.record.status).toBe('deleted');
    expect(await proc.exited).toBe(0);
    expect(existsSync(runnerDir(name))).toBe(false);
    expect(proc.output()).toMatch(/purged by test: decommissioned/);
  }, 180_000);

  it('reports the true outcome of tasks it had when it comes back after kill -9, running none twice', async () => {
    const ready = await readyRunner('found');
    const name = ready.name;
    let proc = ready.proc;
    const quick = sharedFile(h.dataDir, `${name}.quick`);
    const long = sharedFile(h.dataDir, `${name}.long`);
    const handle = await h.start(
      {
        name: 'found',
        group: '/test/agent',
        tasks: [
          task(h, 'quick', [`echo start >> ${quick}`, 'sleep 8', 'exit 3']),
          task(h, 'long', [`echo start >> ${long}`, 'sleep 20']),
          task(h, 'after', ['true'], { depends: ['long'] }),
        ],
      },
      { heartbeatTimeout: '3s' },
    );
    await until('both tasks started', () => lines(quick) === 1 && lines(long) === 1, 60_000);
    const startedAt = Date.now();
    proc.kill('SIGKILL');
    await proc.exited;
    const killedAt = Date.now();
    console.log(`killed ${killedAt - startedAt} ms after both tasks started`);
    const lost = await h.waitFor(handle, (s) => s.tasks.quick?.status === 'lost' && s.tasks.long?.status === 'lost');
    const lostAfterMs = Date.now() - killedAt;
    expect(lost.phase).toBe('running');
    expect(lost.tasks.after!.status).toBe('pending');
    // The quick task ends while its runner is away.
    await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 9_000 - Date.now())));

    // Meanwhile the operator gives the runner a schedule: its next start computes it.
    await cli([
      'runner',
      'schedule',
      'set',
      name,
      'nightly',
      '--cron',
      '0 2 * * *',
      '--file',
      join(projectRoot, 'examples', 'diamond.yaml'),
    ]);

    const back = Date.now();
    proc = serve(name);
    const reported = await h.waitFor(handle, (s) => s.tasks.quick?.status === 'failed');
    const reportedAfterMs = Date.now() - back;
    expect(reported.tasks.quick!.exitCode).toBe(3);
    const s: RunState = await handle.result();
    expect(s.tasks.long!.status).toBe('success');
    expect(s.tasks.after!.status).toBe('success');
    expect(lines(quick)).toBe(1);
    expect(lines(long)).toBe(1);
    expect(proc.output()).toMatch(/recovering 2 task\(s\)/);
    // The stale sessions were resolved and the schedule computed before it served.
    const restart = proc.output().slice(proc.output().lastIndexOf('starting (state in'));
    expect(restart).toMatch(/schedule nightly: 0 2 \* \* \* \(UTC\) .*next scheduled runs \d{4}-/);
    expect(restart.indexOf('schedule nightly')).toBeLessThan(restart.indexOf(' serving pool '));
    console.log(
      `lost ${lostAfterMs} ms after kill -9; outcome reported ${reportedAfterMs} ms after the runner came back`,
    );
  }, 180_000);

  it('leaves a task it had at SIGTERM to its report: no shutdown failure reaches the run', async () => {
    const ready = await readyRunner('sigterm');
    const name = ready.name;
    let proc = ready.proc;
    const started = sharedFile(h.dataDir, `${name}.started`);
    const handle = await h.start(
      {
        name: 'sigterm',
        group: '/test/agent',
        tasks: [task(h, 'work', [`echo start >> ${started}`, 'sleep 18', 'exit 7'])],
      },
      { heartbeatTimeout: '3s' },
    );
    await until('the task started', () => lines(started) === 1, 60_000);

    // The workers stop with the task still running; past their grace period (10 s) the SDK
    // cancels its execution. The server answers all along: had the execution completed with that
    // cancel, the run would have failed the task with "Worker is shutting down".
    proc.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    const lost = await h.waitFor(
      handle,
      (s) => s.tasks.work?.status !== 'running' && s.tasks.work?.status !== 'reserved',
    );
    expect(lost.tasks.work, JSON.stringify(lost.tasks.work)).toMatchObject({
      status: 'lost',
      exitCode: null,
      attempts: 1,
    });
    expect(lost.tasks.work!.reason).toMatch(/stopped heartbeating/);

    // Back: it re-attaches the task and reports its true outcome when it ends.
    proc = serve(name);
    const s: RunState = await handle.result();
    expect(s.tasks.work).toMatchObject({ status: 'failed', exitCode: 7, attempts: 1 });
    expect(s.tasks.work!.reason).toMatch(/exited with code 7; runner ".*" reported it after it came back/);
    expect(lines(started)).toBe(1);
  }, 180_000);

  it('stops a session from the runner commands', async () => {
    const { name } = await readyRunner('stopper');
    const handle = await h.start({ name: 'endless', group: '/test/agent', tasks: [task(h, 'spin', ['sleep 120'])] });
    await h.waitFor(handle, (s) => s.tasks.spin?.status === 'running');
    await until(
      'the session listed',
      async () => (await cli(['runner', 'sessions', name])).includes(handle.workflowId),
      60_000,
    );
    expect(await cli(['runner', 'stop-session', name, handle.workflowId, '--reason', 'hung'])).toContain('stopping');
    const s: RunState = await handle.result();
    expect(s.result).toBe('stopped');
    expect(s.reason).toContain(`session stopped on runner ${name}: hung`);
    expect(s.tasks.spin!.status).toBe('cancelled');
  }, 120_000);

  it('fails the lost tasks of a purged runner with the reason', async () => {
    const { name, proc } = await readyRunner('gone');
    const handle = await h.start(
      {
        name: 'gone',
        group: '/test/agent',
        tasks: [
          task(h, 'deploy', ['sleep 30']),
          task(h, 'cleanup', ['true'], { depends: [{ task: 'deploy', conditions: ['on_failure'] }] }),
        ],
      },
      { heartbeatTimeout: '3s' },
    );
    await h.waitFor(handle, (s) => s.tasks.deploy?.status === 'running');
    proc.kill('SIGKILL');
    await proc.exited;
    await h.waitFor(handle, (s) => s.tasks.deploy?.status === 'lost');
    await until('the registry knows the lost task', async () => (await admin.get(name)).lostTasks.length === 1, 60_000);
    await admin.purge(name, { by: 'ops', reason: 'machine is dead', waitMs: 1_000 });
    const s = await h.waitFor(handle, (st) => st.tasks.deploy?.status === 'failed');
    expect(s.tasks.deploy!.reason).toContain(`runner "${name}" was purged by ops: machine is dead`);
    // Its on_failure handler is now ready (it waits for a runner of the pool: none is left).
    expect(s.tasks.cleanup!.status).toBe('pending');
    await h.client.workflow.getHandle(handle.workflowId).signal('stop', { reason: 'test over', by: 'test' });
  }, 180_000);
});
