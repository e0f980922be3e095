/**
 * Metrics as an operator scrapes them: a real Prometheus (Debian's, test/helpers/prometheus.ts)
 * scrapes a `runfleet worker` and a `runfleet runner serve` started with `--metrics-port`
 * (`RUNFLEET_METRICS_PORT`); after a run, its PromQL queries see Runfleet's counters move (runs
 * finished, tasks finished, dispatch latency, registry transitions, a refused registration), the
 * runner's slot gauge, and the Temporal SDK's own metrics beside them.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkflowId } from '../../src/ids';
import { freePorts } from '../../src/server/ports';
import type { RunState } from '../../src/types';
import { startHarness, type Harness } from '../helpers/harness';
import { killAll, registerRunner, serveRunner, startControlProcess, type Proc } from '../helpers/processes';
import { startPrometheus, type PrometheusServer } from '../helpers/prometheus';
import { projectRoot } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

let h: Harness;
let prometheus: PrometheusServer | undefined;
let control: Proc;
let controlQueue: string;
let controlPort: number;
let runnerPort: number;

beforeAll(async () => {
  h = await startHarness({ runners: [] });
  [controlPort, runnerPort] = (await freePorts(2)) as [number, number];
  controlQueue = uniqueName('metrics-control');
  control = startControlProcess({
    address: h.address,
    controlQueue,
    logFile: join(h.dataDir, 'metrics-control.log'),
    env: { RUNFLEET_METRICS_PORT: String(controlPort) },
  });
  await until(
    'the control worker serving metrics',
    async () => (await fetch(`http://127.0.0.1:${controlPort}/metrics`)).ok,
    {
      timeoutMs: 60_000,
      detail: () => control.output(),
    },
  );
  prometheus = await startPrometheus({
    projectRoot,
    targets: [`127.0.0.1:${controlPort}`, `127.0.0.1:${runnerPort}`],
    scrapeIntervalS: 1,
  });
}, 180_000);

afterAll(async () => {
  await killAll();
  await prometheus?.stop();
  await h?.stop();
});

/** The sum of a PromQL query's samples (0 when it has none). */
async function sum(promql: string): Promise<number> {
  const result = await prometheus!.query(promql);
  return result.reduce((n, r) => n + Number(r.value[1]), 0);
}

describe('metrics', () => {
  it("Prometheus scrapes Runfleet's counters, gauges and histograms with the SDK's", async () => {
    const name = uniqueName('metered');
    const pool = uniqueName('pool');
    const token = await registerRunner(h.client, controlQueue, { name, pool, settings: { slots: 3 } });
    // A registration refused (a token for another runner): counted by its reason.
    const other = uniqueName('other');
    await registerRunner(h.client, controlQueue, { name: other, pool });
    const refused = serveRunner({ address: h.address, root: h.dataDir, name: other, pool, token });
    await until('the wrong token refused', () => /token rejected/.test(refused.output()), 60_000);
    refused.kill('SIGKILL');

    const runner = serveRunner({
      address: h.address,
      root: h.dataDir,
      name,
      pool,
      token,
      env: { RUNFLEET_METRICS_PORT: String(runnerPort) },
    });
    await until('the runner serving', () => / serving pool /.test(runner.output()), {
      timeoutMs: 60_000,
      detail: () => runner.output(),
    });

    const handle = await h.client.workflow.start('runWorkflow', {
      taskQueue: controlQueue,
      workflowId: runWorkflowId('/test/metrics', uniqueName('r')),
      args: [
        {
          spec: {
            name: 'metered',
            group: '/test/metrics',
            tasks: [
              { name: 'a', pool, steps: ['true'] },
              { name: 'b', pool, steps: ['true'], depends: ['a'] },
              { name: 'c', pool, steps: ['exit 3'], depends: ['a'] },
            ],
          },
        },
      ],
    });
    const state = (await handle.result()) as RunState;
    expect(state.result).toBe('failed');

    // Scraped every second: each figure shows once the next scrape after the run took it.
    // What the endpoints served last, for the failure message.
    let served = '';
    const waitFor = (what: string, promql: string, atLeast: number) =>
      until(
        what,
        async () => {
          const v = await sum(promql);
          if (v >= atLeast) return v;
          const texts = await Promise.all(
            [controlPort, runnerPort].map(async (p) => (await fetch(`http://127.0.0.1:${p}/metrics`)).text()),
          );
          served = texts
            .join('\n')
            .split('\n')
            .filter((l) => l.startsWith('runfleet_'))
            .join('\n');
          return false;
        },
        { timeoutMs: 30_000, detail: () => `${promql} < ${atLeast}; the endpoints serve:\n${served}` },
      );
    const figures = {
      runsFailed: await waitFor('a failed run counted', 'runfleet_runs_finished_total{result="failed"}', 1),
      tasksSucceeded: await waitFor('two tasks succeeded', 'runfleet_tasks_finished_total{status="success"}', 2),
      tasksFailed: await waitFor('one task failed', 'runfleet_tasks_finished_total{status="failed"}', 1),
      dispatches: await waitFor(
        'three dispatches measured',
        `runfleet_task_dispatch_latency_seconds_count{pool="${pool}"}`,
        3,
      ),
      runDurations: await waitFor('a run duration measured', 'runfleet_run_duration_seconds_count', 1),
      ready: await waitFor('runners entering ready', 'runfleet_runner_transitions_total{to="ready"}', 1),
      refusals: await waitFor('the refused registration', 'runfleet_registrations_refused_total', 1),
      freeSlots: await waitFor('the runner slot gauge', `runfleet_runner_slots{runner="${name}", state="free"}`, 3),
      sdk: await waitFor('the SDK metrics beside them', '{__name__=~"temporal_workflow_completed.*"}', 1),
    };
    const targets = await prometheus!.targets();
    expect(targets.map((t) => t.health)).toEqual(['up', 'up']);
    console.log(`metrics seen by Prometheus: ${JSON.stringify(figures)}`);
  }, 240_000);
});
