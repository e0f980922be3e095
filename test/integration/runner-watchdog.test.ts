/**
 * A registered runner process and a Temporal server that goes away and comes back: the runner
 * waits for a server that is not there yet, its watchdog notices a server that stopped answering
 * (idle, connection restarted), it rejoins when the server is back, and a task running across the
 * outage runs once and its true outcome reaches the run; the CLI's watchers (`run submit --wait`,
 * `run watch`, `run logs --follow`) ride the outage out and end with the run.
 *
 * This file runs its OWN dev server (the suite's shared one must never stop), on a fixed port with
 * a SQLite file so the registry and the runs survive a restart. The control worker is a
 * `runfleet worker` process, which reconnects by itself when the server is back.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunnerAdmin } from '../../src/client/runners';
import { withLiveStatus } from '../../src/client/live-status';
import { KeyRing, createDataConverter } from '../../src/codec';
import { runWorkflowId } from '../../src/ids';
import { startDevServer, type DevServer } from '../../src/server/dev-server';
import { freePorts } from '../../src/server/ports';
import { ensureTemporalBinary } from '../../src/server/temporal-binary';
import type { RunState } from '../../src/types';
import { stateQuery } from '../../workflows/run-messages';
import { registerTsx, testRunnerAdmin } from '../helpers/harness';
import { fileLines, sharedDir, sharedFile } from '../helpers/shared-files';
import { killAll, serveRunner, startControlProcess, startRunfleet, type Proc } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

const projectRoot = resolve(__dirname, '..', '..');
/**
 * Fast runner timings so the test takes seconds: the production default watchdog is 30 s (pings
 * every 5 s, heartbeats every 10 s). The registry calls a runner idle after 2/3 of the watchdog.
 */
const SETTINGS = { slots: 2, heartbeatMs: 1_000, pingMs: 1_000, watchdogMs: 6_000 };
/** Longer than the watchdog, so the runner must notice. */
const OUTAGE_MS = 10_000;

let binary: string;
let port: number;
let dir: string;
/** Where tasks (users of their own on a root runner) write their counts and find their gates. */
let shared: string;
let dbFile: string;
let address: string;
let server: DevServer | undefined;
let control: Proc;
let controlQueue: string;
let client: Client;
let admin: RunnerAdmin;

/** Starts (or restarts) this file's server on the same port and database file. */
async function startServer(): Promise<number> {
  const t0 = Date.now();
  try {
    server = await startDevServer({
      binary,
      port,
      dbFile,
      headless: true,
      logFile: join(dir, 'temporal-dev-server.log'),
    });
  } catch (err) {
    throw new Error(`the dev server could not (re)start on port ${port} with ${dbFile}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return Date.now() - t0;
}

async function stopServer(): Promise<void> {
  await server?.stop();
  server = undefined;
}

const lines = (file: string): number => fileLines(file).length;

interface Probe {
  status: number;
  body: { ready?: boolean; live?: boolean; reason?: string; state?: string };
}

async function probe(proc: Proc, path: '/livez' | '/readyz'): Promise<Probe> {
  const healthPort = await until(
    'the health port',
    () => /health: http:\/\/127\.0\.0\.1:(\d+)\/livez/.exec(proc.output())?.[1],
    60_000,
  );
  const r = await fetch(`http://127.0.0.1:${healthPort}${path}`);
  return { status: r.status, body: (await r.json()) as Probe['body'] };
}

const serve = (name: string, pool: string, token?: string): Proc =>
  serveRunner({ address, root: dir, name, pool, ...(token ? { token } : {}), healthPort: 0 });

async function createRunner(name: string, pool: string): Promise<string> {
  const issued = await admin.create({ name, pool, settings: SETTINGS, by: 'test' });
  return issued.token;
}

async function startRun(spec: { name: string; tasks: unknown[] }): Promise<WorkflowHandle> {
  return client.workflow.start('runWorkflow', {
    taskQueue: controlQueue,
    workflowId: runWorkflowId('/test/watchdog', uniqueName('r')),
    args: [{ spec: { ...spec, group: '/test/watchdog' } }],
  });
}

async function state(handle: WorkflowHandle): Promise<RunState> {
  const [s, description] = await Promise.all([handle.query(stateQuery), handle.describe()]);
  return withLiveStatus(s, description.raw.pendingActivities);
}

/** The run's result, or a failure showing its state when it does not end in time. */
async function result(handle: WorkflowHandle, timeoutMs = 90_000): Promise<RunState> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => {
    timer = setTimeout(() => r('late'), timeoutMs);
  });
  try {
    const first = await Promise.race([handle.result() as Promise<RunState>, late]);
    if (first !== 'late') return first;
  } finally {
    clearTimeout(timer);
  }
  const s = await state(handle);
  throw new Error(`${handle.workflowId} did not end in ${timeoutMs} ms; its tasks: ${JSON.stringify(s.tasks)}`);
}

/** The control worker process must outlive the server's restarts; say so when it did not. */
function expectControlAlive(): void {
  expect(
    control.child.exitCode,
    `the control worker (runfleet worker) exited across the restart:\n${control.output().slice(-2000)}`,
  ).toBeNull();
}

beforeAll(async () => {
  // The client's data converter loads Runfleet's payload converter (TypeScript) by path.
  registerTsx();
  binary = await ensureTemporalBinary({ projectRoot });
  [port] = (await freePorts(1)) as [number];
  dir = mkdtempSync(join(tmpdir(), 'runfleet-watchdog-'));
  shared = sharedDir('runfleet-watchdog-tasks-');
  dbFile = join(dir, 'temporal.db');
  await startServer();
  address = server!.address;
  controlQueue = uniqueName('control');
  control = startControlProcess({ address, controlQueue, logFile: join(dir, 'control.log') });
  client = new Client({
    connection: await Connection.connect({ address }),
    dataConverter: createDataConverter({ keys: new KeyRing() }),
  });
  admin = testRunnerAdmin(client, controlQueue);
}, 180_000);

afterEach(async () => {
  // Runner processes of a case end with it; the control worker serves every case.
  await killAll();
  control = startControlProcess({ address, controlQueue, logFile: join(dir, 'control.log') });
  if (server === undefined) await startServer();
});

afterAll(async () => {
  await killAll();
  await client?.connection.close();
  await stopServer();
});

describe('runner watchdog', () => {
  it('waits for a server that is not up yet, then registers', async () => {
    const name = uniqueName('early');
    const pool = uniqueName('pool');
    // The registry needs the server: create the runner first, then take the server away.
    const token = await createRunner(name, pool);
    await stopServer();

    const proc = serve(name, pool, token);
    await until(
      '"server unreachable" in the runner log',
      () => new RegExp(`server unreachable at ${address.replace(/\./g, '\\.')}`).test(proc.output()),
      60_000,
    );
    const live = await probe(proc, '/livez');
    expect(live.status).toBe(200);
    const waiting = await probe(proc, '/readyz');
    expect(waiting.status).toBe(503);
    expect(waiting.body.state).toBe('connecting');
    expect(waiting.body.reason).toMatch(/server unreachable|connecting to Temporal/);

    const startedAt = Date.now();
    await startServer();
    const up = Date.now();
    await until('the runner ready', async () => (await probe(proc, '/readyz')).status === 200, 90_000);
    const readyAfterMs = Date.now() - up;
    expect((await probe(proc, '/readyz')).body.state).toBe('ready');
    expect((await probe(proc, '/livez')).status).toBe(200);
    expect(proc.output()).toMatch(new RegExp(`runner ${name} registered with the fleet`));
    expectControlAlive();
    await until('the registry says ready', async () => (await admin.get(name)).status === 'ready', 60_000);
    console.log(
      `case 1: server start took ${up - startedAt} ms; runner ready ${readyAfterMs} ms after the server answered`,
    );
  }, 240_000);

  it('goes idle when the server stops answering, rejoins when it is back, and takes work again', async () => {
    const name = uniqueName('dog');
    const pool = uniqueName('pool');
    const token = await createRunner(name, pool);
    const proc = serve(name, pool, token);
    await until('the runner ready', async () => (await probe(proc, '/readyz')).status === 200, 60_000);
    await until('the registry says ready', async () => (await admin.get(name)).status === 'ready', 60_000);

    const stoppedAt = Date.now();
    await stopServer();
    const idle = await until(
      'the runner idle',
      async () => {
        const r = await probe(proc, '/readyz');
        return r.body.state === 'idle' ? r : undefined;
      },
      { timeoutMs: OUTAGE_MS * 3, everyMs: 100 },
    );
    const idleAfterMs = Date.now() - stoppedAt;
    expect(idle.status).toBe(503);
    expect(proc.output()).toMatch(/no answer from Temporal for \d+s: restarting the connection/);
    expect((await probe(proc, '/livez')).status).toBe(200);
    // The watchdog should not fire much before its time, nor much after.
    expect(idleAfterMs).toBeGreaterThanOrEqual(SETTINGS.watchdogMs - 1_000);

    await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + OUTAGE_MS - Date.now())));
    // Still waiting while the server is away.
    const away = await probe(proc, '/readyz');
    expect(away.status).toBe(503);
    expect(away.body.state).toBe('idle');

    const startedAt = Date.now();
    await startServer();
    const up = Date.now();
    await until('the runner ready again', async () => (await probe(proc, '/readyz')).status === 200, 90_000);
    const readyAfterMs = Date.now() - up;
    expect((await probe(proc, '/readyz')).body.state).toBe('ready');
    expectControlAlive();
    await until('the registry says ready again', async () => (await admin.get(name)).status === 'ready', 60_000);

    // Work submitted now runs on it (its pool has no other runner).
    const counter = sharedFile(shared, `${name}.count`);
    const handle = await startRun({ name: 'after', tasks: [{ name: 'after', pool, steps: [`echo x >> ${counter}`] }] });
    const s = await result(handle);
    expect(s.result).toBe('success');
    expect(s.tasks.after!.runner).toBe(name);
    expect(lines(counter)).toBe(1);
    console.log(
      `case 2: idle ${idleAfterMs} ms after the server stopped; server start took ${up - startedAt} ms; ` +
        `runner ready ${readyAfterMs} ms after the server answered (${up - startedAt + readyAfterMs} ms after its start)`,
    );
  }, 240_000);

  it('keeps tasks running across the outage and delivers their true outcomes, running each once', async () => {
    const name = uniqueName('span');
    const pool = uniqueName('pool');
    const token = await admin.create({ name, pool, settings: { ...SETTINGS, slots: 3 }, by: 'test' });
    const proc = serve(name, pool, token.token);
    await until('the runner ready', async () => (await probe(proc, '/readyz')).status === 200, 60_000);

    // Each task ends when the test creates its gate file, at a chosen moment of the outage:
    // `early` while the server is away but before the watchdog fires (the worker still runs it),
    // `during` after the watchdog restarted the connection, `after` once the runner rejoined.
    // Exit codes only the task itself produces; one run each, so they run side by side.
    const tasks = { early: 3, during: 4, after: 5 } as const;
    type Name = keyof typeof tasks;
    const names = Object.keys(tasks) as Name[];
    const counters = Object.fromEntries(names.map((t) => [t, sharedFile(shared, `${name}.${t}.count`)])) as Record<
      Name,
      string
    >;
    const counter = (t: Name) => counters[t];
    const gate = (t: Name) => join(shared, `${name}.${t}.go`);
    const open = (t: Name) => writeFileSync(gate(t), '');
    const handles = {} as Record<Name, WorkflowHandle>;
    for (const t of names) {
      handles[t] = await startRun({
        name: t,
        tasks: [
          {
            name: t,
            pool,
            steps: [`echo start >> ${counter(t)}`, `while [ ! -e ${gate(t)} ]; do sleep 0.2; done`, `exit ${tasks[t]}`],
          },
        ],
      });
    }
    await until('the three tasks started', () => names.every((t) => lines(counter(t)) === 1), 60_000);

    const stoppedAt = Date.now();
    await stopServer();
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await probe(proc, '/readyz')).body.state).toBe('ready'); // not yet noticed
    open('early');
    await until('the runner idle', async () => (await probe(proc, '/readyz')).body.state === 'idle', {
      timeoutMs: 30_000,
      everyMs: 100,
    });
    open('during');
    await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + OUTAGE_MS - Date.now())));
    await startServer();
    await until('the runner ready again', async () => (await probe(proc, '/readyz')).status === 200, 90_000);
    expectControlAlive();
    open('after');

    for (const t of names) {
      const s = await result(handles[t]);
      const task = s.tasks[t]!;
      expect(
        { t, status: task.status, exitCode: task.exitCode, attempts: task.attempts },
        `task ${t}: ${task.reason ?? 'no reason'}; runner output:\n${proc.output().slice(-4_000)}`,
      ).toEqual({
        t,
        status: 'failed',
        exitCode: tasks[t],
        attempts: 1,
      });
      expect(lines(counter(t))).toBe(1);
    }
    const out = proc.output();
    const via = (t: Name) => (new RegExp(`reported \\S+ task ${t} `).test(out) ? 'taskReport' : 'completion');
    console.log(`case 3: outcomes reached the runs: ${names.map((t) => `${t} by ${via(t)}`).join(', ')}`);
  }, 240_000);

  it('run submit --wait, run watch and run logs --follow ride out the outage and end with the run', async () => {
    const name = uniqueName('watched');
    const pool = uniqueName('pool');
    const token = await createRunner(name, pool);
    const proc = serve(name, pool, token);
    await until('the runner ready', async () => (await probe(proc, '/readyz')).status === 200, 60_000);

    const counter = sharedFile(shared, `${name}.count`);
    const gate = join(shared, `${name}.go`);
    const runFile = join(dir, `${name}.yaml`);
    const id = uniqueName('w');
    writeFileSync(
      runFile,
      JSON.stringify({
        name: 'watched',
        group: '/test/watchers',
        tasks: [
          {
            name: 'gated',
            pool,
            steps: [`echo start >> ${counter}`, `while [ ! -e ${gate} ]; do sleep 0.2; done`, 'echo after the outage'],
          },
        ],
      }),
    );
    const env = { TEMPORAL_ADDRESS: address, RUNFLEET_CONTROL_TASK_QUEUE: controlQueue };
    const cli = (label: string, args: string[]) =>
      startRunfleet(args, { env, logFile: join(dir, `${name}.${label}.log`) });
    const submit = cli('submit', ['run', 'submit', runFile, '--id', id, '--wait']);
    const workflowId = runWorkflowId('/test/watchers', id);
    await until('the task started', () => lines(counter) === 1, { timeoutMs: 60_000, detail: () => submit.output() });
    const watch = cli('watch', ['run', 'watch', workflowId]);
    const logs = cli('logs', ['run', 'logs', workflowId, 'gated', '--follow']);
    await until('run watch showing the task', () => /gated/.test(watch.output()), {
      timeoutMs: 30_000,
      detail: () => watch.output(),
    });
    // Every watcher connected and following before the outage (a process still starting when the
    // server goes away fails to connect: that is not riding an outage out).
    await until('run logs --follow printing the task', () => /==> step 2\/3/.test(logs.output()), {
      timeoutMs: 30_000,
      detail: () => logs.output(),
    });

    const stoppedAt = Date.now();
    await stopServer();
    // Watchers started during the outage wait for Temporal to answer at all.
    const lateWatch = cli('late-watch', ['run', 'watch', workflowId]);
    const lateLogs = cli('late-logs', ['run', 'logs', workflowId, 'gated', '--follow']);
    const all = [submit, watch, logs, lateWatch, lateLogs];
    // Long enough for every watcher to have asked (and failed) several times.
    await until('every watcher saying what it waits for', () => all.every((p) => /waiting for /.test(p.output())), {
      timeoutMs: 30_000,
      detail: () => all.map((p) => p.output()).join('\n---\n'),
    });
    for (const p of all) expect(p.child.exitCode, p.output()).toBeNull();
    await startServer();
    const outageMs = Date.now() - stoppedAt;
    writeFileSync(gate, '');

    const codes = await Promise.all(all.map((p) => p.exited));
    const outputs = all.map((p) => p.output());
    expect(codes, outputs.join('\n---\n')).toEqual([0, 0, 0, 0, 0]);
    expect(outputs[3]).toMatch(/waiting for Temporal: cannot reach Temporal/);
    expect(outputs[3]).toMatch(/success/);
    expect(outputs[4]).toMatch(/after the outage/);
    expect(outputs[0]).toMatch(/answered again after/);
    expect(outputs[0]).toMatch(/success/);
    expect(outputs[1]).toMatch(/success/);
    expect(outputs[2]).toMatch(/after the outage/);
    expect(lines(counter)).toBe(1);
    const waits = outputs.map((o) => (o.match(/waiting for [^\n]*/m) ?? [''])[0]);
    console.log(`watchers: outage ${outageMs} ms; first waits:\n  ${waits.join('\n  ')}`);
  }, 240_000);
});
