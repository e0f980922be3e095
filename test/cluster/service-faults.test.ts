/**
 * Faults of Temporal as a service (four processes on PostgreSQL): kill -9 of the history, the
 * matching or the frontend service mid-run, and PostgreSQL stopped and started again. Each case runs several
 * two-task runs through a `runfleet worker` process and a registered runner process, watched by
 * `run submit --wait`, `run watch` and `run logs --follow`; the tasks end while the part is down.
 * Nothing may be lost or run twice, every run succeeds, and every watcher rides the fault out and
 * ends 0 with its run.
 *
 * This file runs its OWN cluster (the tier's shared one serves other files at the same time, and
 * must never lose a part under them).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing, createDataConverter } from '../../src/codec';
import { runWorkflowId } from '../../src/ids';
import { Cluster, type Service } from '../../src/server/cluster';
import type { RunState } from '../../src/types';
import { registerTsx, testRunnerAdmin } from '../helpers/harness';
import { killAll, serveRunner, startControlProcess, startRunfleet, type Proc } from '../helpers/processes';
import { fileLines, sharedDir, sharedFile } from '../helpers/shared-files';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

const projectRoot = resolve(__dirname, '..', '..');
const RUNS = 4;
/** How long the part stays down: longer than a task's heartbeat timeout (10 s by default). */
const DOWN_MS = 12_000;

let cluster: Cluster;
let address: string;
let dir: string;
let shared: string;
let control: Proc;
let controlQueue: string;
let client: Client;

beforeAll(async () => {
  registerTsx();
  cluster = new Cluster({
    projectRoot,
    stateDir: join(projectRoot, '.runfleet', 'test', 'cluster-faults'),
    port: 0,
    pgPort: 0,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  await cluster.destroy();
  address = (await cluster.start()).address;
  dir = mkdtempSync(join(tmpdir(), 'runfleet-faults-'));
  shared = sharedDir('runfleet-faults-tasks-');
  controlQueue = uniqueName('control');
  control = startControlProcess({ address, controlQueue, logFile: join(dir, 'control.log') });
  client = new Client({
    connection: await Connection.connect({ address }),
    dataConverter: createDataConverter({ keys: new KeyRing() }),
  });
}, 300_000);

afterEach(async () => {
  // A part left down by a failed case must not fail the next one too.
  await cluster.startPostgres();
  for (const s of ['history', 'matching', 'frontend', 'worker'] as const) {
    if (cluster.pid(s) === null) await cluster.startService(s);
  }
});

afterAll(async () => {
  await killAll();
  await client?.connection.close();
  await cluster?.destroy();
});

type Fault = Service | 'postgres';

/** Takes the part down; returns the function that brings it back. */
async function takeDown(fault: Fault): Promise<() => Promise<void>> {
  if (fault === 'postgres') {
    // Stopped with the services up: every pooled connection breaks, committed work stays.
    await cluster.stopPostgres();
    return () => cluster.startPostgres();
  }
  cluster.kill(fault);
  return () => cluster.startService(fault);
}

describe('faults on Temporal as a service', () => {
  for (const fault of ['history', 'matching', 'frontend', 'postgres'] as const) {
    const what = fault === 'postgres' ? 'PostgreSQL stopped and started again' : `kill -9 of ${fault}`;
    it(`${what} mid-run: every run succeeds, no task runs twice, every watcher ends with its run`, async () => {
      const name = uniqueName(`faults-${fault}`);
      const pool = uniqueName('pool');
      const admin = testRunnerAdmin(client, controlQueue);
      const { token } = await admin.create({ name, pool, settings: { slots: RUNS + 1 }, by: 'test' });
      const runner = serveRunner({ address, root: dir, name, pool, token });
      const gate = join(shared, `${name}.go`);
      const counters: string[] = [];
      const submits: Proc[] = [];
      const env = { TEMPORAL_ADDRESS: address, RUNFLEET_CONTROL_TASK_QUEUE: controlQueue };
      const cli = (label: string, args: string[]): Proc =>
        startRunfleet(args, { env, logFile: join(dir, `${name}.${label}.log`) });
      const ids = Array.from({ length: RUNS }, (_, i) => `${name}-${i}`);
      for (const id of ids) {
        const counter = sharedFile(shared, `${id}.count`);
        counters.push(counter);
        const runFile = join(dir, `${id}.json`);
        writeFileSync(
          runFile,
          JSON.stringify({
            name: 'faults',
            group: '/test/faults',
            tasks: [
              {
                name: 'first',
                pool,
                steps: [`echo first >> ${counter}`, `while [ ! -e ${gate} ]; do sleep 0.2; done`, 'echo first done'],
              },
              { name: 'second', pool, depends: ['first'], steps: [`echo second >> ${counter}`] },
            ],
          }),
        );
        submits.push(cli(`submit-${id}`, ['run', 'submit', runFile, '--id', id, '--wait']));
      }
      const watched = runWorkflowId('/test/faults', ids[0]!);
      // A submit that ends before the fault (a refused run file) fails the case at once.
      const early = Promise.race(submits.map((p) => p.exited.then(() => p))).then((p) => {
        throw new Error(`run submit ended before the fault:\n${p.output()}`);
      });
      early.catch(() => {});
      await Promise.race([
        early,
        until('every first task started', () => counters.every((c) => fileLines(c).length === 1), {
          timeoutMs: 90_000,
          detail: () => [runner, ...submits].map((p) => p.output().slice(-1500)).join('\n---\n'),
        }),
      ]);
      const watch = cli('watch', ['run', 'watch', watched]);
      const logs = cli('logs', ['run', 'logs', watched, 'first', '--follow']);
      await until('run watch showing the task', () => /first/.test(watch.output()), {
        timeoutMs: 30_000,
        detail: () => watch.output(),
      });
      await until('run logs --follow printing the task', () => /==> step 2\/3/.test(logs.output()), {
        timeoutMs: 30_000,
        detail: () => logs.output(),
      });

      const downAt = Date.now();
      const bringBack = await takeDown(fault);
      // The first tasks end while the part is down: their outcomes must still arrive, once.
      writeFileSync(gate, '');
      await new Promise((r) => setTimeout(r, DOWN_MS));
      await bringBack();
      const backAt = Date.now();

      const watchers = [...submits, watch, logs];
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const running = watchers.filter((p) => p.child.exitCode === null);
          const shown = running.map((p) => `${p.logFile}:\n${p.output().slice(-1500)}`).join('\n---\n');
          reject(new Error(`watchers still running 150 s after the fault:\n${shown}`));
        }, 150_000);
      });
      const codes = await Promise.race([Promise.all(watchers.map((p) => p.exited)), late]).finally(() =>
        clearTimeout(timer),
      );
      const endedAt = Date.now();
      const outputs = watchers.map((p) => p.output());
      expect(codes, outputs.join('\n---\n')).toEqual(watchers.map(() => 0));
      for (const out of submits.map((p) => p.output())) expect(out).toMatch(/success/);
      expect(outputs[RUNS]).toMatch(/success/);
      expect(outputs[RUNS + 1]).toMatch(/first done/);
      // Each task ran exactly once.
      for (const counter of counters) expect(fileLines(counter)).toEqual(['first', 'second']);
      for (const id of ids) {
        const result = (await client.workflow.getHandle(runWorkflowId('/test/faults', id)).result()) as RunState;
        expect(result.result).toBe('success');
      }
      expect(control.child.exitCode, control.output().slice(-2000)).toBeNull();
      expect(runner.child.exitCode, runner.output().slice(-2000)).toBeNull();
      const waited = outputs.filter((o) => /waiting for /.test(o)).length;
      console.log(
        `${what}: down ${backAt - downAt} ms; all ${RUNS} runs and ${watchers.length} watchers ended ` +
          `${endedAt - backAt} ms after it was back; ${waited} of ${watchers.length} watchers said what they waited for`,
      );
      runner.kill('SIGTERM');
      await runner.exited;
    }, 300_000);
  }
});
