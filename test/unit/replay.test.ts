/**
 * Replay over committed histories: a workflow change that would break runs already in flight
 * (non-determinism) fails here. Histories come from `npx tsx scripts/record-histories.ts`, or from
 * `temporal workflow show -w <id> --output json > test/replay/histories/<name>.json`.
 */
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const dir = join(__dirname, '..', 'replay', 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
let workflowBundle: { code: string };

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  workflowBundle = await bundleWorkflowCode({
    workflowsPath: join(__dirname, '..', '..', 'workflows', 'index.ts'),
    logger: new DefaultLogger('WARN'),
  });
}, 60_000);

describe('replay of committed run histories', () => {
  it('has histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(4);
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
