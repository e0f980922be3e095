/**
 * Replay over committed histories: a workflow change that would break workflows already in
 * flight (non-determinism) fails here. Histories come from `npx tsx scripts/record-histories.ts`
 * (runs, and the runner registry's `runner/<name>` workflow through create, register, disable,
 * enable, ping and purge), or from
 * `temporal workflow show -w <id> --output json > test/replay/histories/<name>.json`.
 */
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PAYLOAD_CONVERTER_PATH } from '../../src/codec';

const dir = join(__dirname, '..', 'replay', 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
let workflowBundle: { code: string };

/** The workflow type a history file records (its first event starts it). */
function workflowType(file: string): string | undefined {
  const raw = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    events: { workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }[];
  };
  return raw.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
}

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  // The bundle the control worker runs: with Runfleet's payload converter (key deliveries).
  workflowBundle = await bundleWorkflowCode({
    workflowsPath: join(__dirname, '..', '..', 'workflows', 'index.ts'),
    payloadConverterPath: PAYLOAD_CONVERTER_PATH,
    logger: new DefaultLogger('WARN'),
  });
}, 60_000);

describe('replay of committed workflow histories', () => {
  it('has histories of runs and of the runner registry to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
    const types = new Set(files.map(workflowType));
    expect(types).toContain('runWorkflow');
    expect(types).toContain('runnerWorkflow');
  });

  it.each(files)(
    '%s replays deterministically',
    async (file) => {
      const history = historyFromJSON(JSON.parse(readFileSync(join(dir, file), 'utf8')));
      await expect(Worker.runReplayHistory({ workflowBundle }, history, file)).resolves.toBeUndefined();
    },
    60_000,
  );
});
