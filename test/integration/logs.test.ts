/**
 * A runner's log as a log pipeline reads it: `runfleet runner serve` with
 * `RUNFLEET_LOG_FORMAT=json` and `RUNFLEET_LOG_LEVEL=info` writes one JSON object per line, its
 * own lines and the Temporal SDK's alike, and the lines about a task carry its run, task, attempt
 * and runner as fields.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkflowId } from '../../src/ids';
import type { RunState } from '../../src/types';
import { startHarness, type Harness } from '../helpers/harness';
import { killAll, registerRunner, serveRunner } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ runners: [] });
});
afterAll(async () => {
  await killAll();
  await h?.stop();
});

describe('JSON logs', () => {
  it("a runner's lines are JSON objects; a task's carry its run, task, attempt and runner", async () => {
    const name = uniqueName('logged');
    const token = await registerRunner(h.client, h.controlQueue, { name, pool: h.pool });
    const runner = serveRunner({
      address: h.address,
      root: h.dataDir,
      name,
      pool: h.pool,
      token,
      env: { RUNFLEET_LOG_FORMAT: 'json', RUNFLEET_LOG_LEVEL: 'info' },
    });
    await until('the runner serving', () => /serving pool/.test(runner.output()), {
      timeoutMs: 60_000,
      detail: () => runner.output(),
    });
    const workflowId = runWorkflowId('/test/logs', uniqueName('r'));
    const handle = await h.client.workflow.start('runWorkflow', {
      taskQueue: h.controlQueue,
      workflowId,
      args: [
        { spec: { name: 'logged', group: '/test/logs', tasks: [{ name: 'build', pool: h.pool, steps: ['exit 4'] }] } },
      ],
    });
    const state = (await handle.result()) as RunState;
    expect(state.tasks.build!.exitCode).toBe(4);

    const parsed = () =>
      runner
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const ended = await until('the task-ended line', () => parsed().find((l) => l['message'] === 'task build ended'), {
      timeoutMs: 30_000,
      detail: () => runner.output().slice(-3_000),
    });
    expect(ended).toMatchObject({
      level: 'info',
      run: workflowId,
      task: 'build',
      attempt: 1,
      runner: name,
      exitCode: 4,
    });
    expect(parsed().find((l) => l['message'] === 'task build started')).toMatchObject({
      run: workflowId,
      runner: name,
    });
    // Every line of the process is JSON: the runner's own (with its name), the SDK's (with its component).
    const lines = runner
      .output()
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('$ '));
    const notJson = lines.filter((l) => !l.startsWith('{'));
    expect(notJson, notJson.join('\n')).toEqual([]);
    const serving = parsed().find((l) => /serving pool/.test(String(l['message'])));
    expect(serving).toMatchObject({ level: 'info', runner: name });
    console.log(`a task line as the runner wrote it: ${JSON.stringify(ended)}`);
  }, 120_000);
});
