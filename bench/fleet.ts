/**
 * Fleet refresh benchmark: a fleet of 1,000 instances over 10 resource classes, on moto (a real
 * EC2 API, started here) and a headless in-memory dev server (started here).
 *
 *   npx tsx bench/fleet.ts                       # 10 classes x 100 instances, 3 no-drift refreshes
 *   npx tsx bench/fleet.ts --classes 10 --per-class 100 --repeat 3 --max-in-flight 8
 *
 * Measured, each with its EC2 calls (read vs mutating, counted by SDK middleware on the worker's
 * client, so SDK retries of one call count once):
 *  - initial apply: 10 launch templates created, 1,000 instances launched, a token minted;
 *  - no-drift refresh (x repeat): must make zero mutating calls; target < 30 s;
 *  - drift refresh: a new AMI (10 template versions), 100 instances gone behind our back (records
 *    closed), 100 untracked tagged instances (terminated), the warm pool refilled (100 launches);
 *  - baseline (bench/fleet-baseline.ts): a bare Temporal workflow whose one activity pages through
 *    DescribeInstances for the same 1,000 instances on the same moto and server, the floor of
 *    what any Temporal-driven refresh must do; every row prints its ratio to it.
 *  - the initial apply and the drift refresh also create (and purge) each instance's registry
 *    runner, through the control worker the testbed runs.
 * Results: a table on stdout and `.bench/fleet-<timestamp>.json`. A measurement, not a test:
 * exits 0 whatever the figures, non-zero only on errors.
 */
import { RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import {
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  bundleWorkflowCode,
  makeTelemetryFilterString,
} from '@temporalio/worker';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { WORKFLOW_BUNDLE_OPTIONS } from '../src/codec';
import { FLEET_TAG } from '../src/fleet/schema';
import { startFleetTestbed, type FleetTestbed } from '../test/helpers/fleet-testbed';
import { startDevServer, type DevServer } from '../src/server/dev-server';
import { ensureTemporalBinary } from '../src/server/temporal-binary';
import type { RefreshResult } from '../workflows/fleet';
import { fleetBaselineActivities, fleetReadBaseline } from './fleet-baseline';
import { formatTable } from './stats';

const PROJECT_ROOT = resolve(__dirname, '..');
const TARGET_S = 30;

interface Args {
  classes: number;
  perClass: number;
  repeat: number;
  maxInFlight: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { classes: 10, perClass: 100, repeat: 3, maxInFlight: 8 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]?.replace(/^--/, '');
    const value = Number(argv[i + 1]);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${key} takes a positive whole number`);
    if (key === 'classes') args.classes = value;
    else if (key === 'per-class') args.perClass = value;
    else if (key === 'repeat') args.repeat = value;
    else if (key === 'max-in-flight') args.maxInFlight = value;
    else throw new Error(`unknown option --${key}`);
  }
  return args;
}

interface Row {
  step: string;
  seconds: number;
  read: number;
  mutating: number;
  byCommand: Record<string, number>;
  detail: string;
}

async function measure(bed: FleetTestbed, step: string, fn: () => Promise<RefreshResult | string>): Promise<Row> {
  bed.resetCalls();
  const t0 = performance.now();
  const r = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const detail =
    typeof r === 'string'
      ? r
      : r.error
        ? `error: ${r.error}`
        : `changes ${r.changes}; templates +${r.templatesCreated} ~${r.templatesUpdated}; launched ${r.launched}; closed ${r.closed}; orphans ${r.orphansTerminated}; expired ${r.markedTerminated}`;
  const row: Row = {
    step,
    seconds,
    read: bed.calls.read,
    mutating: bed.calls.mutating,
    byCommand: { ...bed.calls.byCommand },
    detail,
  };
  console.error(`${step}: ${seconds.toFixed(2)} s, EC2 ${row.read} read / ${row.mutating} mutating (${detail})`);
  return row;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const total = args.classes * args.perClass;
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'ERROR', other: 'ERROR' }), forward: {} },
    },
  });
  const binary = await ensureTemporalBinary({ projectRoot: PROJECT_ROOT, log: (l) => console.error(l) });
  let server: DevServer | undefined;
  let bed: FleetTestbed | undefined;
  try {
    server = await startDevServer({ binary, headless: true, namespace: 'default' });
    console.error(`dev server at ${server.address}; bundling workflows`);
    const bundle = await bundleWorkflowCode({
      workflowsPath: join(PROJECT_ROOT, 'workflows', 'index.ts'),
      ...WORKFLOW_BUNDLE_OPTIONS,
      logger: new DefaultLogger('ERROR'),
    });
    bed = await startFleetTestbed({
      projectRoot: PROJECT_ROOT,
      temporalAddress: server.address,
      workflowBundle: bundle,
      workflowOptions: { ec2TimeoutMs: 120_000 },
      maxInFlight: args.maxInFlight,
    });
    await bed.startWorker();
    const name = bed.uniqueFleet('bench');
    const classes = Array.from({ length: args.classes }, (_, i) => ({
      name: `c${i}`,
      instanceType: 't3.small',
      minIdle: args.perClass,
      maxInstances: args.perClass,
    }));
    const spec = bed.spec(name, { resourceClasses: classes, registrationTimeout: '1h', orphanGrace: '1s' });
    const rows: Row[] = [];

    rows.push(await measure(bed, `initial apply (${total} launches)`, () => bed!.fleet.apply(spec)));
    const records = (await bed.fleet.status(name)).records;
    const stateBytes = Buffer.byteLength(JSON.stringify(await bed.fleet.status(name)));
    console.error(
      `fleet state (the status query, about what continue-as-new carries): ${(stateBytes / 1024).toFixed(0)} KiB`,
    );
    if (records.length !== total) throw new Error(`expected ${total} records, got ${records.length}`);

    for (let i = 1; i <= args.repeat; i++)
      rows.push(await measure(bed, `no-drift refresh #${i}`, () => bed!.fleet.refresh(name)));

    // The bare-Temporal baseline, in this run on this server and moto: a workflow whose one
    // activity pages through DescribeInstances for the fleet's tag (the least a refresh reads).
    const baselineQueue = `${bed.taskQueue}-baseline`;
    const baselineConnection = await NativeConnection.connect({ address: server.address });
    const baselineWorker = await Worker.create({
      connection: baselineConnection,
      taskQueue: baselineQueue,
      workflowBundle: await bundleWorkflowCode({
        workflowsPath: require.resolve('./fleet-baseline'),
        logger: new DefaultLogger('ERROR'),
      }),
      activities: fleetBaselineActivities(bed.ec2),
    });
    const baselineRun = baselineWorker.run();
    for (let i = 1; i <= args.repeat; i++) {
      rows.push(
        await measure(bed, `baseline #${i}: bare workflow + DescribeInstances activity`, async () => {
          const n = await bed!.temporal.workflow.execute(fleetReadBaseline, {
            taskQueue: baselineQueue,
            workflowId: `bench/fleet-baseline/${name}/${i}`,
            args: [{ tag: FLEET_TAG, fleet: name }],
          });
          return `${n} instances`;
        }),
      );
    }
    baselineWorker.shutdown();
    await baselineRun;
    await baselineConnection.close();

    // Drift behind the fleet's back (not measured), then the refresh that repairs it (measured).
    const drift = Math.max(1, Math.floor(total / 10));
    const gone = records.slice(0, drift).map((r) => r.instanceId);
    for (let i = 0; i < gone.length; i += 200)
      await bed.ec2.send(new TerminateInstancesCommand({ InstanceIds: gone.slice(i, i + 200) }));
    await bed.ec2.send(
      new RunInstancesCommand({
        ImageId: 'ami-0aaaaaaa',
        MinCount: drift,
        MaxCount: drift,
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: FLEET_TAG, Value: name }] }],
      }),
    );
    await new Promise((r) => setTimeout(r, 1_100)); // past orphanGrace
    const changed = { ...spec, launchTemplate: { ...spec.launchTemplate, ami: 'ami-0ccccccc' } };
    rows.push(
      await measure(bed, `drift refresh (new AMI, ${drift} gone, ${drift} untracked)`, () => bed!.fleet.apply(changed)),
    );
    rows.push(await measure(bed, 'no-drift refresh after drift', () => bed!.fleet.refresh(name)));

    const d = await bed.temporal.workflow.getHandle(`fleet/${name}`).describe();
    const historyBytes = Number(d.raw.workflowExecutionInfo?.historySizeBytes ?? 0);
    console.error(
      `fleet workflow history: ${d.historyLength} events, ${(historyBytes / 1024).toFixed(0)} KiB after ${rows.length - 1} refreshes`,
    );
    const noDrift = rows.filter((r) => r.step.startsWith('no-drift'));
    const worst = Math.max(...noDrift.map((r) => r.seconds));
    const baselines = rows.filter((r) => r.step.startsWith('baseline')).map((r) => r.seconds);
    const baseline = [...baselines].sort((a, b) => a - b)[Math.floor(baselines.length / 2)] ?? NaN;
    console.log(
      formatTable(
        ['step', 'seconds', 'vs baseline', 'EC2 read', 'EC2 mutating', 'result'],
        rows.map((r) => [
          r.step,
          r.seconds.toFixed(2),
          `${(r.seconds / baseline).toFixed(2)}x`,
          String(r.read),
          String(r.mutating),
          r.detail,
        ]),
      ),
    );
    console.log(`baseline (median of ${baselines.length}): ${baseline.toFixed(2)} s`);
    console.log(
      `\n${total} instances over ${args.classes} classes, maxInFlight ${args.maxInFlight}: slowest no-drift refresh ${worst.toFixed(2)} s ` +
        `(target < ${TARGET_S} s: ${worst < TARGET_S ? 'met' : 'MISSED'}); mutating calls without drift: ${noDrift.map((r) => r.mutating).join(', ')}`,
    );
    mkdirSync(join(PROJECT_ROOT, '.bench'), { recursive: true });
    const file = join(PROJECT_ROOT, '.bench', `fleet-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          args,
          rows,
          baselineSeconds: baseline,
          stateBytes,
          historyEvents: d.historyLength,
          historyBytes,
          targetSeconds: TARGET_S,
        },
        null,
        2,
      ),
    );
    console.log(`written ${file}`);
  } finally {
    await bed?.stop();
    await server?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
