/**
 * Replay over committed histories: a workflow change that would break workflows already in
 * flight (non-determinism) fails here. Histories come from `npx tsx scripts/record-histories.ts`
 * (runs, one of them asking its runner about an execution lost on its way, the runner registry's `runner/<name>` workflow through create, register, disable,
 * enable, ping and purge, and the EC2 fleet's `fleet/<name>` through apply, registration,
 * provision, startTask, release, idle expiry, an operator's runner purge, plan and a new AMI),
 * or from `temporal workflow show -w <id> --output json > test/replay/histories/<name>.json`.
 * `client-submitted.json` is a run `RunfleetClient.submitRun` started (its search attributes and
 * memo set at start: it upserts only its end) whose failed task skips a chain, recorded so; it asks
 * its control worker for the runner keys it knows at its start (a local activity, the third gate),
 * where `client-submitted-second-gate.json` looks its runner's key up.
 * `*-before-gate.json` were recorded before the run workflow's patch gates (src/run/patches.ts)
 * and ask each patch; their namesakes were recorded with a gate, asked (a marker) by runs started
 * directly, given in the argument (`patchGate`, no marker) to runs the client starts:
 * `client-submitted-marker-gate.json` is a client's run from before the argument. `queued-on-lease*.json` queue
 * tasks behind busy leases: `-first-gate` asked `queue-on-busy-lease` on its own after the first
 * gate, the other was recorded under the second gate, which covers it.
 */
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { WORKFLOW_BUNDLE_OPTIONS } from '../../src/codec';

const dir = join(__dirname, '..', 'replay', 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
let workflowBundle: { code: string };

type Payloads = { payloads?: { data?: string }[] };

/** The events of a history file, as far as these checks read them. */
function historyEvents(file: string) {
  return (
    JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
      events: {
        workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string }; input?: Payloads };
        activityTaskScheduledEventAttributes?: { activityType?: { name?: string }; input?: Payloads };
        markerRecordedEventAttributes?: { markerName?: string; details?: Record<string, Payloads> };
        upsertWorkflowSearchAttributesEventAttributes?: unknown;
      }[];
    }
  ).events;
}

const decode = (data: string | undefined) => (data ? Buffer.from(data, 'base64').toString('utf8') : '');

/** The patches a history's run asked, in order (its patch markers' ids). */
function patchMarkers(events: ReturnType<typeof historyEvents>): string[] {
  return events.flatMap((e) =>
    (e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads ?? []).map(
      (p) => (JSON.parse(decode(p.data)) as { id: string }).id,
    ),
  );
}

/** The workflow type a history file records (its first event starts it). */
function workflowType(file: string): string | undefined {
  return historyEvents(file)[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
}

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  // The bundle the control worker runs: with Runfleet's payload converter (key deliveries).
  workflowBundle = await bundleWorkflowCode({
    workflowsPath: join(__dirname, '..', '..', 'workflows', 'index.ts'),
    ...WORKFLOW_BUNDLE_OPTIONS,
    logger: new DefaultLogger('WARN'),
  });
}, 60_000);

describe('replay of committed workflow histories', () => {
  it('has histories of runs, of the runner registry and of a fleet to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
    const types = new Set(files.map(workflowType));
    expect(types).toContain('runWorkflow');
    expect(types).toContain('runnerWorkflow');
    expect(types).toContain('fleetWorkflow');
  });

  it.each([
    ['queued-on-lease-first-gate.json', 'queue-on-busy-lease'],
    ['queued-on-lease.json', 'run-patches-2026-12b'],
  ])('%s queues tasks behind busy leases, and replays (below) with them; its patch marker: %s', (file, marker) => {
    const events = historyEvents(file);
    const queued = events.filter((e) => {
      const a = e.activityTaskScheduledEventAttributes;
      return a?.activityType?.name === 'executeTask' && decode(a.input?.payloads?.[0]?.data).includes('"queued":true');
    });
    expect(queued.length).toBeGreaterThan(0);
    // The patches the run asked, in order: the first gate's run asked this one on its own; a run
    // under the second gate asks only that gate.
    expect(patchMarkers(events)).toEqual(file.includes('first-gate') ? ['run-patches-2026-12', marker] : [marker]);
  });

  it.each([
    ['client-submitted.json', { gate: 'run-patches-2026-12c', markers: [], upserts: 1 }],
    ['client-submitted-second-gate.json', { gate: 'run-patches-2026-12b', markers: [], upserts: 1 }],
    ['client-submitted-marker-gate.json', { gate: undefined, markers: ['run-patches-2026-12'], upserts: 2 }],
  ])('%s: the gate its argument names, the patch markers it records and its upserts', (file, want) => {
    const events = historyEvents(file);
    const input = JSON.parse(
      decode(events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data),
    ) as {
      patchGate?: string;
    };
    expect(input.patchGate).toBe(want.gate);
    expect(patchMarkers(events)).toEqual(want.markers);
    // The gate asked upserts TemporalChangeVersion; the run's end upserts its phase and result.
    expect(events.filter((e) => e.upsertWorkflowSearchAttributesEventAttributes).length).toBe(want.upserts);
  });

  it.each([
    ['client-submitted.json', { knownKeys: 1, lookups: 0 }],
    ['client-submitted-second-gate.json', { knownKeys: 0, lookups: 1 }],
  ])('%s: the runner keys taken at its start (a local activity) and the lookups it made', (file, want) => {
    const events = historyEvents(file);
    const localActivities = events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity');
    const lookups = events.filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runnerSigningKeys',
    );
    expect(localActivities.length).toBe(want.knownKeys);
    expect(lookups.length).toBe(want.lookups);
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
