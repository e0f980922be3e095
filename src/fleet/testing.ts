/**
 * A fleet against a real EC2 API (moto) and a real Temporal server, for integration tests and
 * the benchmark: moto started on a free port, an EC2 client that counts its calls (read vs
 * mutating, through SDK middleware), a fleet worker on a task queue of its own, a FleetClient,
 * and a desired state pointing at moto's default subnets and security group. Node-only.
 */
import { randomBytes } from 'node:crypto';
import { DescribeSecurityGroupsCommand, DescribeSubnetsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { startMoto, type MotoServer } from '../server/moto';
import { createEc2Client, createFleetWorker } from '../../workers/fleet';
import { FleetClient } from './client';
import type { FleetSpecInput } from './schema';
import type { FleetOptions } from '../../workflows/fleet';

export interface Ec2CallCounts {
  read: number;
  mutating: number;
  byCommand: Record<string, number>;
}

/** Counts every EC2 call the client sends (SDK retries of one call count once). */
export function countEc2Calls(ec2: EC2Client): { counts: Ec2CallCounts; reset(): void } {
  const counts: Ec2CallCounts = { read: 0, mutating: 0, byCommand: {} };
  ec2.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName ?? 'unknown').replace(/Command$/, '');
      counts.byCommand[name] = (counts.byCommand[name] ?? 0) + 1;
      if (/^(Describe|Get|List)/.test(name)) counts.read++;
      else counts.mutating++;
      return next(args);
    },
    { step: 'initialize', name: 'runfleetCallCounter' },
  );
  return {
    counts,
    reset() {
      counts.read = 0;
      counts.mutating = 0;
      counts.byCommand = {};
    },
  };
}

export interface FleetTestbedOptions {
  projectRoot: string;
  temporalAddress: string;
  /** A prebuilt workflow bundle (bundling takes seconds). */
  workflowBundle: { code: string };
  workflowOptions?: FleetOptions;
  maxInFlight?: number;
}

export interface FleetTestbed {
  moto: MotoServer;
  ec2: EC2Client;
  calls: Ec2CallCounts;
  resetCalls(): void;
  temporal: Client;
  fleet: FleetClient;
  taskQueue: string;
  tokenSecret: string;
  subnets: string[];
  securityGroup: string;
  /** A fleet name no other test uses. */
  uniqueFleet(prefix?: string): string;
  /** A valid desired state for `name` against moto; `extra` overrides top-level fields. */
  spec(name: string, extra?: Partial<FleetSpecInput>): FleetSpecInput;
  /** The fleet worker, in this process; with another EC2 client (through a proxy) if given. */
  startWorker(ec2?: EC2Client): Promise<void>;
  stopWorker(): Promise<void>;
  /** Resets moto (between tests) and reads its default subnets and security group again. */
  resetMoto(): Promise<void>;
  stop(): Promise<void>;
}

let runtimeInstalled = false;

export async function startFleetTestbed(opts: FleetTestbedOptions): Promise<FleetTestbed> {
  if (!runtimeInstalled) {
    runtimeInstalled = true;
    try {
      Runtime.install({ logger: new DefaultLogger('WARN') });
    } catch {
      // Installed already by another helper in this process.
    }
  }
  const moto = await startMoto({ projectRoot: opts.projectRoot });
  const ec2 = createEc2Client({
    region: 'us-east-1',
    endpoint: moto.endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 3,
  });
  const counter = countEc2Calls(ec2);
  const connection = await NativeConnection.connect({ address: opts.temporalAddress });
  const clientConnection = await Connection.connect({ address: opts.temporalAddress });
  const temporal = new Client({ connection: clientConnection });
  const taskQueue = `fleet-${process.pid}-${randomBytes(4).toString('hex')}`;
  const tokenSecret = randomBytes(24).toString('hex');
  const fleet = new FleetClient({
    client: temporal,
    address: opts.temporalAddress,
    taskQueue,
    workflowOptions: opts.workflowOptions ?? { ec2TimeoutMs: 10_000 },
  });
  let worker: { w: Worker; done: Promise<void> } | null = null;
  let subnets: string[] = [];
  let securityGroup = '';

  const readDefaults = async () => {
    const s = await ec2.send(new DescribeSubnetsCommand({}));
    subnets = (s.Subnets ?? []).map((x) => x.SubnetId as string).slice(0, 2);
    const g = await ec2.send(new DescribeSecurityGroupsCommand({}));
    securityGroup = g.SecurityGroups?.[0]?.GroupId as string;
  };
  await readDefaults();

  const bed: FleetTestbed = {
    moto,
    ec2,
    calls: counter.counts,
    resetCalls: () => counter.reset(),
    temporal,
    fleet,
    taskQueue,
    tokenSecret,
    get subnets() {
      return subnets;
    },
    get securityGroup() {
      return securityGroup;
    },
    uniqueFleet: (prefix = 'f') => `${prefix}${process.pid}${randomBytes(4).toString('hex')}`,
    spec(name, extra = {}) {
      return {
        name,
        launchTemplate: {
          ami: 'ami-0aaaaaaa',
          userData: '#!/bin/sh\nexec runfleet runner serve --pool {{resourceClass}} --token {{token}}\n',
          securityGroups: [securityGroup],
        },
        resourceClasses: [{ name: 'small', instanceType: 't3.small', minIdle: 0, maxInstances: 20 }],
        subnets,
        tags: { team: 'ci' },
        // No periodic refresh during a test: tests refresh when they mean to.
        refreshInterval: '1h',
        orphanGrace: '1s',
        ...extra,
      } as FleetSpecInput;
    },
    async startWorker(client = ec2) {
      if (worker) return;
      const w = await createFleetWorker({
        connection,
        namespace: 'default',
        taskQueue,
        ec2: client,
        tokenSecret,
        workflowBundle: opts.workflowBundle,
        maxInFlight: opts.maxInFlight ?? 8,
      });
      worker = { w, done: w.run() };
    },
    async stopWorker() {
      if (!worker) return;
      const { w, done } = worker;
      worker = null;
      w.shutdown();
      await done;
    },
    async resetMoto() {
      await moto.reset();
      await readDefaults();
    },
    async stop() {
      await bed.stopWorker();
      await clientConnection.close();
      await connection.close();
      ec2.destroy();
      await moto.stop();
    },
  };
  return bed;
}
