/**
 * A run of 10,000 tasks completes, and no workflow history of it passes Temporal's 10,240-event
 * warning: the run continues as new as its history grows, carrying its (compressed) state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunState } from '../../src/types';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, task, type Harness } from '../helpers/harness';
import { killAll, registerRunner, startRunnerProcess } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';

const TASKS = 10_000;
const HISTORY_WARNING = 10_240;

let h: Harness;
beforeAll(async () => {
  // Runners as their own processes, as in production: spawning 10,000 shells from the process
  // that also runs the control worker would slow both.
  h = await startHarness();
  for (const name of [uniqueName('big-a'), uniqueName('big-b')]) {
    const dataDir = join(h.dataDir, name);
    mkdirSync(dataDir, { recursive: true });
    const token = await registerRunner(h.client, h.controlQueue, { name, pool: h.pool, settings: { slots: 50 } });
    startRunnerProcess({ address: h.address, name, pool: h.pool, dataDir, token });
  }
});
afterAll(async () => {
  await killAll();
  await h?.stop();
});

describe('a run of 10,000 tasks', () => {
  it('completes with every task run once and every history under the warning threshold', async () => {
    const tasks = Array.from({ length: TASKS }, (_, i) => task(h, `t${i}`, ['true']));
    const handle = await h.start({ name: 'ten thousand', group: '/test/big', tasks });
    const s: RunState = await handle.result();
    expect(s.result).toBe('success');
    expect(Object.keys(s.tasks)).toHaveLength(TASKS);
    expect(Object.values(s.tasks).every((t) => t.status === 'success' && t.attempts === 1)).toBe(true);

    const executions: { runId: string; historyLength: number; status: string }[] = [];
    for await (const info of h.client.workflow.list({ query: `WorkflowId = '${handle.workflowId}'` })) {
      executions.push({ runId: info.runId, historyLength: info.historyLength, status: info.status.name });
    }
    // It continued as new at least once: one history could not have held it.
    expect(executions.length).toBeGreaterThan(1);
    expect(executions.filter((e) => e.status === 'CONTINUED_AS_NEW')).toHaveLength(executions.length - 1);
    for (const e of executions) expect(e.historyLength).toBeLessThan(HISTORY_WARNING);
  }, 900_000);
});
