/**
 * Faults: a throttling EC2, and the crash points of the two-phase termination.
 *
 * Crash points of the two-phase termination. The fleet worker runs as a real process
 * (`runfleet fleet worker`) talking to moto through a proxy that can hold TerminateInstances:
 * - between phase 1 and 2: the record is marked terminated, TerminateInstances never reaches EC2;
 * - between phase 2 and 3: EC2 terminated the instance, the worker never hears back.
 * The worker is killed (SIGKILL) at that point; another worker takes over. Afterwards moto shows
 * no leaked instance, and no record, registration or registry runner dangles.
 */
import { DescribeInstancesCommand, DescribeLaunchTemplateVersionsCommand } from '@aws-sdk/client-ec2';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { templateName } from '../../src/fleet/plan';
import { countEc2Calls, startFleetTestbed, type FleetTestbed } from '../helpers/fleet-testbed';
import { createEc2Client } from '../../workers/fleet';
import { workflowBundle } from '../helpers/harness';
import { temporalAddress } from '../helpers/temporal';
import { TEST_OPERATOR_KEY_FILE, testOperator } from '../helpers/operator-key';
import { until } from '../helpers/until';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'runfleet');

let bed: FleetTestbed;
let proxy: Proxy;
let child: ChildProcess | null = null;

beforeAll(async () => {
  // EC2 activities time out after 4 s: a killed worker's activity is retried that soon.
  bed = await startFleetTestbed({
    projectRoot: ROOT,
    temporalAddress: temporalAddress(),
    workflowBundle: await workflowBundle(),
    workflowOptions: { ec2TimeoutMs: 4_000 },
    // The child fleet worker signs its instances' grants with the suite's key file: trust that key.
    operatorSeed: testOperator().seed,
  });
  proxy = await startProxy(bed.moto.endpoint);
});
afterEach(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = null;
  await bed.stopWorker();
});
afterAll(async () => {
  await bed?.stop();
  await new Promise((r) => proxy?.server.close(r));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Holds TerminateInstances before (`request`) or after (`response`) moto sees it. */
interface Proxy {
  server: Server;
  endpoint: string;
  hold: 'request' | 'response' | null;
  held: number;
  /** Answer every 4th call with RequestLimitExceeded (before moto sees it), as EC2 does under load. */
  throttle: boolean;
  throttled: number;
  seen: number;
  /** Answer TerminateInstances of this instance with NotFound this many times (not visible yet). */
  invisible: { instanceId: string; times: number } | null;
  notFounds: number;
}

function startProxy(target: string): Promise<Proxy> {
  const p: Proxy = {
    server: createServer(),
    endpoint: '',
    hold: null,
    held: 0,
    throttle: false,
    throttled: 0,
    seen: 0,
    invisible: null,
    notFounds: 0,
  };
  p.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const action = new URLSearchParams(body.toString('utf8')).get('Action');
      const holding = action === 'TerminateInstances' ? p.hold : null;
      const inv = p.invisible;
      if (
        action === 'TerminateInstances' &&
        inv &&
        inv.times > 0 &&
        new URLSearchParams(body.toString('utf8')).get('InstanceId.1') === inv.instanceId
      ) {
        inv.times--;
        p.notFounds++;
        res.writeHead(400, { 'content-type': 'text/xml' });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>' +
            `<Message>The instance ID '${inv.instanceId}' does not exist</Message></Error></Errors><RequestID>nf</RequestID></Response>`,
        );
        return;
      }
      if (p.throttle && p.seen++ % 4 === 0) {
        p.throttled++;
        res.writeHead(503, { 'content-type': 'text/xml' });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code>' +
            '<Message>Request limit exceeded.</Message></Error></Errors><RequestID>throttled</RequestID></Response>',
        );
        return;
      }
      if (holding === 'request') {
        p.held++;
        return; // never forwarded, never answered: the worker dies waiting
      }
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(([k]) => !['host', 'content-length', 'connection'].includes(k)),
      ) as Record<string, string>;
      fetch(target + (req.url ?? '/'), { method: req.method, headers, body: req.method === 'GET' ? undefined : body })
        .then(async (r) => {
          const out = Buffer.from(await r.arrayBuffer());
          if (holding === 'response') {
            p.held++;
            return; // EC2 did it; the worker never hears
          }
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/xml' });
          res.end(out);
        })
        .catch(() => res.destroy());
    });
  });
  return new Promise((resolve) =>
    p.server.listen(0, '127.0.0.1', () => {
      p.endpoint = `http://127.0.0.1:${(p.server.address() as AddressInfo).port}`;
      resolve(p);
    }),
  );
}

/** `runfleet fleet worker` as its own process, through the proxy. */
async function startChildWorker(): Promise<ChildProcess> {
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|RUNFLEET_)/.test(k))),
    TEMPORAL_ADDRESS: temporalAddress(),
    // The data keys of the test run (none): not the checkout's own.
    ...(process.env.RUNFLEET_KEY_FILE ? { RUNFLEET_KEY_FILE: process.env.RUNFLEET_KEY_FILE } : {}),
    // No keys, said out loud: the suite's processes run in clear (vitest.config.ts).
    RUNFLEET_ALLOW_PLAINTEXT: '1',
    // The suite's operator key: the fleet worker signs its instances' token grants with it.
    RUNFLEET_OPERATOR_KEY_FILE: TEST_OPERATOR_KEY_FILE,
    RUNFLEET_FLEET_TOKEN_SECRET: bed.tokenSecret,
    RUNFLEET_CONTROL_TASK_QUEUE: bed.controlQueue,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
  const c = spawn(
    process.execPath,
    [BIN, 'fleet', 'worker', '--endpoint', proxy.endpoint, '--task-queue', bed.taskQueue, '--region', 'us-east-1'],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fleet worker did not start:\n${log}`)), 90_000);
    c.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('fleet worker serving')) {
        clearTimeout(timer);
        resolve();
      }
    });
    c.once('exit', (code) => reject(new Error(`fleet worker exited (${code}):\n${log}`)));
  });
  return c;
}

async function ec2State(id: string): Promise<string | undefined> {
  const out = await bed.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  return out.Reservations?.[0]?.Instances?.[0]?.State?.Name;
}

/** A fleet with one registered, idle instance whose idle time has run out. */
async function expiredIdleInstance(name: string): Promise<string> {
  const spec = bed.spec(name, {
    maxIdleTime: '1s',
    resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 1, maxInstances: 5 }],
  });
  await bed.fleet.apply(spec);
  const id = (await bed.fleet.status(name)).records[0]?.instanceId as string;
  await bed.registerInstance(name, id);
  // No warm pool from here on, so the refresh terminates and launches nothing else.
  await bed.fleet.apply({
    ...spec,
    resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 0, maxInstances: 5 }],
  });
  await sleep(1_100);
  return id;
}

describe('a throttling EC2', () => {
  it('a quarter of the calls refused with RequestLimitExceeded: apply converges, one version per change, then no drift', async () => {
    proxy.throttle = true;
    proxy.throttled = 0;
    const throttled = createEc2Client({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      maxAttempts: 6,
    });
    const calls = countEc2Calls(throttled);
    try {
      await bed.startWorker(throttled);
      const name = bed.uniqueFleet('throttle');
      const spec = bed.spec(name, {
        resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 3, maxInstances: 5 }],
      });
      const first = await bed.fleet.apply(spec);
      expect(first).toMatchObject({ error: null, templatesCreated: 1, launched: 3 });
      const changed = { ...spec, launchTemplate: { ...spec.launchTemplate, ami: 'ami-0dddddd' } };
      expect(await bed.fleet.apply(changed)).toMatchObject({ error: null, templatesUpdated: 1 });
      expect(proxy.throttled).toBeGreaterThan(3);
      expect(calls.counts.read + calls.counts.mutating).toBeGreaterThan(0);
      for (const cls of ['small']) {
        const v = await bed.ec2.send(
          new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: templateName(name, cls) }),
        );
        expect(v.LaunchTemplateVersions).toHaveLength(2);
      }
      const live = await bed.ec2.send(
        new DescribeInstancesCommand({ Filters: [{ Name: 'tag:runfleet:fleet', Values: [name] }] }),
      );
      expect((live.Reservations ?? []).flatMap((r) => r.Instances ?? [])).toHaveLength(3); // no duplicate launches
      expect((await bed.fleet.plan(changed)).changes).toBe(0);
    } finally {
      proxy.throttle = false;
      await bed.stopWorker();
      throttled.destroy();
    }
  });
});

describe('eventual consistency', () => {
  it('an instance EC2 does not know yet is not taken for gone: its termination is retried until confirmed', async () => {
    const c = createEc2Client({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    try {
      await bed.startWorker(c);
      const name = bed.uniqueFleet('ec');
      // A launch whose runner never registers expires after 4 s; it stays "young" (orphanGrace 1h).
      const spec = bed.spec(name, {
        registrationTimeout: '4s',
        orphanGrace: '1h',
        resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 1, maxInstances: 3 }],
      });
      await bed.fleet.apply(spec);
      const launched = (await bed.fleet.status(name)).records[0];
      const id = launched?.instanceId as string;
      await bed.fleet.apply({
        ...spec,
        resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 0, maxInstances: 3 }],
      });
      expect((await bed.fleet.status(name)).records[0]?.state).toBe('created'); // not expired yet
      await sleep(Date.parse(launched?.threshold ?? '') - Date.now() + 100);
      proxy.notFounds = 0;
      proxy.invisible = { instanceId: id, times: 2 };
      const r = await bed.fleet.refresh(name);
      expect(proxy.notFounds).toBe(2);
      expect(r).toMatchObject({ markedTerminated: 1, confirmedTerminated: 1 });
      expect((await bed.fleet.status(name)).records).toEqual([]);
      expect(['shutting-down', 'terminated']).toContain(await ec2State(id)); // not leaked
    } finally {
      proxy.invisible = null;
      await bed.stopWorker();
      c.destroy();
    }
  });
});

describe('crash safety of the two-phase termination', () => {
  for (const point of ['request', 'response'] as const) {
    const label =
      point === 'request'
        ? 'between phase 1 (mark) and 2 (TerminateInstances)'
        : 'between phase 2 (TerminateInstances) and 3 (artifacts)';
    it(`a worker killed ${label} leaks nothing`, async () => {
      const name = bed.uniqueFleet('crash');
      proxy.hold = null;
      proxy.held = 0;
      child = await startChildWorker();
      const id = await expiredIdleInstance(name);

      proxy.hold = point;
      const refresh = bed.fleet.refresh(name).catch((e: unknown) => e); // completes after the takeover
      await until('TerminateInstances to be held', () => proxy.held > 0, { timeoutMs: 60_000, everyMs: 100 });
      const before = await bed.fleet.status(name);
      expect(before.records.find((r) => r.instanceId === id)?.state).toBe('terminated'); // phase 1 done
      expect(before.registrations[id]).toBeDefined(); // artifacts still there
      expect((await bed.registry.get(id)).status).not.toBe('deleted');
      child.kill('SIGKILL');
      await new Promise((r) => child?.once('exit', r));
      expect(await ec2State(id)).toBe(point === 'request' ? 'running' : 'terminated');

      proxy.hold = null;
      await bed.startWorker(); // straight to moto
      const after = await until(
        'the record and artifacts to go',
        async () => {
          const s = await bed.fleet.status(name);
          return s.records.length === 0 && Object.keys(s.registrations).length === 0 ? s : null;
        },
        { timeoutMs: 60_000, everyMs: 100 },
      );
      expect(after.records).toEqual([]);
      expect((await bed.registry.get(id)).status).toBe('deleted'); // purged in phase 3
      expect(['shutting-down', 'terminated']).toContain(await ec2State(id));
      const r = (await refresh) as { confirmedTerminated?: number };
      expect(r.confirmedTerminated).toBe(1);
      // No leaked instance: nothing of this fleet is left running in EC2.
      const live = await bed.ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'tag:runfleet:fleet', Values: [name] },
            { Name: 'instance-state-name', Values: ['pending', 'running'] },
          ],
        }),
      );
      expect((live.Reservations ?? []).flatMap((x) => x.Instances ?? [])).toEqual([]);
    });
  }
});
