/**
 * Traces, end to end, into a real OpenTelemetry Collector (test/helpers/otel-collector.ts): a
 * `run submit` client, a `runfleet worker` control worker and a registered `runner serve`, each
 * told `OTEL_EXPORTER_OTLP_ENDPOINT`, make one trace for a run: the client's start and under it
 * the run's activities, the task's execution on its runner among them, joined through Temporal's
 * headers (the run workflow carries the context to its activities: workflows/trace-context.ts).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing, createDataConverter } from '../../src/codec';
import { registerTsx, testRunnerAdmin } from '../helpers/harness';
import { startCollector, type Collector, type ReceivedSpan } from '../helpers/otel-collector';
import { killAll, serveRunner, startControlProcess, startRunfleet } from '../helpers/processes';
import { temporalAddress, uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

const projectRoot = resolve(__dirname, '..', '..');
let collector: Collector;
let client: Client;

beforeAll(async () => {
  registerTsx();
  collector = await startCollector(projectRoot);
  client = new Client({
    connection: await Connection.connect({ address: temporalAddress() }),
    dataConverter: createDataConverter({ keys: new KeyRing() }),
  });
}, 1_800_000);

afterAll(async () => {
  await killAll();
  await client?.connection.close();
  await collector?.stop();
});

describe('traces', () => {
  it('one trace from run submit to the task on its runner, through the run workflow', async () => {
    const address = temporalAddress();
    const dir = mkdtempSync(join(tmpdir(), 'runfleet-tracing-'));
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint };
    const controlQueue = uniqueName('control-traced');
    startControlProcess({ address, controlQueue, logFile: join(dir, 'control.log'), env: otel });
    const name = uniqueName('traced');
    const pool = uniqueName('pool');
    const { token } = await testRunnerAdmin(client, controlQueue).create({
      name,
      pool,
      settings: { slots: 2 },
      by: 'test',
    });
    const runner = serveRunner({ address, root: dir, name, pool, token, env: otel });
    await until('the runner serving', () => / serving pool /.test(runner.output()), {
      timeoutMs: 60_000,
      detail: () => runner.output(),
    });

    const runFile = join(dir, 'run.json');
    const id = uniqueName('t');
    writeFileSync(
      runFile,
      JSON.stringify({ name: 'traced', group: '/test/tracing', tasks: [{ name: 'hello', pool, steps: ['echo hi'] }] }),
    );
    const env = { TEMPORAL_ADDRESS: address, RUNFLEET_CONTROL_TASK_QUEUE: controlQueue, ...otel };
    const submit = startRunfleet(['run', 'submit', runFile, '--id', id, '--wait'], {
      env,
      logFile: join(dir, 'submit.log'),
    });
    expect(await submit.exited, submit.output()).toBe(0);

    // The client's start span names the trace; the workers export theirs within a second or two.
    const start = await until(
      "the client's StartWorkflow span",
      () => collector.spans().find((s) => s.service === 'runfleet-cli' && s.name === 'StartWorkflow:runWorkflow'),
      { timeoutMs: 30_000, detail: () => collector.output().slice(-3000) },
    );
    const inTrace = (): ReceivedSpan[] => collector.spans().filter((s) => s.traceId === start.traceId);
    const taskRun = await until(
      "the runner's span of the task's execution",
      () => inTrace().find((s) => s.service === 'runfleet-runner' && /^RunActivity:executeTask/.test(s.name)),
      { timeoutMs: 30_000, detail: () => JSON.stringify(inTrace(), null, 1) },
    );
    // The reservation on the runner and the run's own activity on the control worker, too.
    await until(
      'the reservation and the control worker activity in the trace',
      () =>
        inTrace().some((s) => s.service === 'runfleet-runner' && s.name === 'RunActivity:reserveSlots') &&
        inTrace().some((s) => s.service === 'runfleet-worker' && s.name.startsWith('RunActivity:')),
      { timeoutMs: 30_000, detail: () => JSON.stringify(inTrace(), null, 1) },
    );
    const spans = inTrace();
    // The task's execution hangs right under the client's start of its run.
    expect(taskRun.parentId).toBe(start.id);
    for (const s of spans.filter((x) => x.name.startsWith('RunActivity:'))) expect(s.parentId, s.name).toBe(start.id);
    console.log(`trace ${start.traceId}: ${spans.length} spans`);
    console.log(spans.map((s) => `  ${s.service} ${s.name} (${s.kind})`).join('\n'));
  }, 240_000);
});
