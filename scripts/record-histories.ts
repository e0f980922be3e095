/**
 * Records the run histories that test/unit/replay.test.ts replays. Run it after a deliberate,
 * compatible-by-design change to workflows/ (none in production yet), never to paper over a
 * replay failure on runs that exist: those need `patched()` instead.
 *
 *   npx tsx scripts/record-histories.ts
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, NativeConnection, Runtime, bundleWorkflowCode } from '@temporalio/worker';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PAYLOAD_CONVERTER_PATH, createDataConverter } from '../src/codec';
import { startDevServer } from '../src/server/dev-server';
import { ensureTemporalBinary } from '../src/server/temporal-binary';
import { createControlWorker } from '../workers/control';
import { createRunner } from '../workers/runner';

const root = resolve(__dirname, '..');
const out = join(root, 'test', 'replay', 'histories');

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const server = await startDevServer({ binary: await ensureTemporalBinary({ projectRoot: root }), headless: true });
  const control = await NativeConnection.connect({ address: server.address });
  const runnerConnection = await NativeConnection.connect({ address: server.address });
  // No data keys: committed histories must replay (and be read) without any key.
  const dataConverter = createDataConverter();
  const client = new Client({ connection: await Connection.connect({ address: server.address }), dataConverter });
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: join(root, 'workflows', 'index.ts'),
    payloadConverterPath: PAYLOAD_CONVERTER_PATH,
  });
  const worker = await createControlWorker({
    connection: control,
    namespace: 'default',
    taskQueue: 'record',
    workflowBundle,
  });
  const runner = await createRunner({
    connection: runnerConnection,
    namespace: 'default',
    name: 'record-1',
    pool: 'record',
    slots: 4,
    dataDir: mkdtempSync(join(tmpdir(), 'runfleet-record-')),
    passEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  const t = (name: string, steps: string[], extra: Record<string, unknown> = {}) => ({
    name,
    steps,
    pool: 'record',
    ...extra,
  });
  const start = (id: string, tasks: unknown[]) =>
    client.workflow.start('runWorkflow', {
      taskQueue: 'record',
      workflowId: `run/replay/${id}`,
      args: [{ spec: { name: id, group: '/replay', tasks } }],
    });
  const save = async (name: string, handle: WorkflowHandle) => {
    writeFileSync(join(out, `${name}.json`), historyToJSON(await handle.fetchHistory()) + '\n');
    console.log(`recorded ${name}`);
  };

  const scenarios = async () => {
    const conditions = await start('conditions', [
      t('a', ['echo a']),
      t('b', ['exit 2'], { depends: ['a'] }),
      t('c', ['exit 1'], { depends: ['a'], ignore_failure: true }),
      t('d', ['true'], { depends: ['b', 'c'] }),
      t('e', ['true'], { depends: [{ task: 'b', conditions: ['on_failure'] }] }),
      t('f', ['true'], { depends: [{ task: 'd', conditions: ['on_skipped'] }] }),
      t('g', ['sleep 5'], { timeout: '1s' }),
    ]);
    await conditions.result();
    await save('conditions-and-timeout', conditions);

    const cancelled = await start('cancel', [t('long', ['sleep 30']), t('next', ['true'], { depends: ['long'] })]);
    await new Promise((r) => setTimeout(r, 2_000));
    await cancelled.cancel();
    await cancelled.result().catch(() => undefined);
    await save('cancelled', cancelled);

    const approval = await start('approval', [
      t('build', ['true']),
      t('deploy', ['true'], { depends: ['build'], needs_approval: true }),
    ]);
    await new Promise((r) => setTimeout(r, 1_500));
    await approval.executeUpdate('approveTask', { args: [{ task: 'deploy', by: 'replay' }] });
    await approval.result();
    await save('approval', approval);

    const fan = await start('fan-out', [
      t('root', ['true']),
      ...Array.from({ length: 20 }, (_, i) => t(`m${i}`, ['true'], { depends: ['root'] })),
      t('join', ['true'], { depends: Array.from({ length: 20 }, (_, i) => `m${i}`) }),
    ]);
    await fan.result();
    await save('fan-out-20', fan);
  };

  try {
    await Promise.all([
      worker.run(),
      runner.run(),
      scenarios().finally(() => {
        runner.shutdown();
        worker.shutdown();
      }),
    ]);
  } finally {
    await client.connection.close();
    await control.close();
    await runnerConnection.close();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
