/**
 * A fleet against a real EC2 API (moto) and a real Temporal server, for integration tests and
 * the benchmark: moto started on a free port, an EC2 client that counts its calls (read vs
 * mutating, through SDK middleware), a fleet worker on a task queue of its own, a control
 * worker for the runner registry on another, a FleetClient, and a desired state pointing at
 * moto's default subnets and security group. Node-only.
 */
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import {
  DescribeInstanceAttributeCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { startMoto, type MotoServer } from './moto';
import { bucketOn, type TestS3 } from './s3';
import { until } from './until';
import { KeyRing, createDataConverter } from '../../src/codec';
import { RunnerAdmin } from '../../src/client/runners';
import { RunfleetError } from '../../src/errors';
import { fleetRunnerName } from '../../src/ids';
import { registrationProof } from '../../src/registry/token';
import { generateSigningKey, signingKeyFromSeed } from '../../src/security/operator';
import { createControlWorker } from '../../workers/control';
import { createEc2Client, createFleetWorker } from '../../workers/fleet';
import type { RegistrationGrant } from '../../workflows/runner-messages';
import { FleetClient } from '../../src/client/fleet';
import type { FleetSpecInput } from '../../src/fleet/schema';
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
  /**
   * base64 seed of the operator key the bed's registry client signs with and its control worker
   * trusts (a test's own child fleet worker must sign with the same). Default: a new one.
   */
  operatorSeed?: string;
  /** A bucket on the bed's moto, read by its control worker (`s3`): task logs beyond instances. */
  withStore?: boolean;
}

export interface FleetTestbed {
  moto: MotoServer;
  /** The bucket of `withStore`, and the variables that point a runner at it; else null. */
  s3: Pick<TestS3, 'settings' | 'store' | 'env'> | null;
  ec2: EC2Client;
  calls: Ec2CallCounts;
  resetCalls(): void;
  temporal: Client;
  fleet: FleetClient;
  taskQueue: string;
  /** The control worker's queue: the registry runners of the fleet's instances. */
  controlQueue: string;
  registry: RunnerAdmin;
  tokenSecret: string;
  subnets: string[];
  securityGroup: string;
  /** A fleet name no other test uses. */
  uniqueFleet(prefix?: string): string;
  /** A valid desired state for `name` against moto; `extra` overrides top-level fields. */
  spec(name: string, extra?: Partial<FleetSpecInput>): FleetSpecInput;
  /** The registration token in an instance's user data, as the instance reads it at boot. */
  userDataToken(instanceId: string): Promise<string>;
  /**
   * Registers an instance's runner as `runfleet runner serve` would (a fresh identity, the token
   * from its user data unless given), and waits until the fleet has the instance idle.
   */
  registerInstance(fleet: string, instanceId: string, token?: string): Promise<RegistrationGrant>;
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
  // No data keys (payloads in clear), but Runfleet's payload converter, as every client has it.
  const temporal = new Client({
    connection: clientConnection,
    dataConverter: createDataConverter({ keys: new KeyRing() }),
  });
  const taskQueue = `fleet-${process.pid}-${randomBytes(4).toString('hex')}`;
  const controlQueue = `${taskQueue}-control`;
  // The bed's own operator key: its registry client signs the fleet's grants, its control worker trusts them.
  const operator = opts.operatorSeed ? signingKeyFromSeed(opts.operatorSeed) : generateSigningKey();
  const registry = new RunnerAdmin(temporal, {
    controlTaskQueue: controlQueue,
    address: opts.temporalAddress,
    operatorKey: operator.seed,
  });
  const s3 = opts.withStore ? await bucketOn(moto.endpoint) : null;
  const control = await createControlWorker({
    connection,
    namespace: 'default',
    taskQueue: controlQueue,
    workflowBundle: opts.workflowBundle,
    operatorPublicKey: operator.publicKey,
    ...(s3 ? { store: s3.store } : {}),
  });
  const controlDone = control.run();
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
    s3,
    ec2,
    calls: counter.counts,
    resetCalls: () => counter.reset(),
    temporal,
    fleet,
    taskQueue,
    controlQueue,
    registry,
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
        // Runners registered by registerInstance() hold no session: not idle for 400 s.
        runnerSettings: { watchdogMs: 600_000 },
        ...extra,
      } as FleetSpecInput;
    },
    async userDataToken(instanceId) {
      const out = await ec2.send(
        new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: 'userData' }),
      );
      const script = Buffer.from(out.UserData?.Value ?? '', 'base64').toString('utf8');
      const token = /--token\s+(\S+)/.exec(script)?.[1];
      if (!token) throw new Error(`no --token in the user data of ${instanceId}:\n${script}`);
      return token;
    },
    async registerInstance(fleetName, instanceId, token) {
      const { publicKey } = generateKeyPairSync('x25519');
      const identity = {
        name: fleetRunnerName(instanceId),
        runnerId: randomUUID(),
        publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
        signingKey: generateSigningKey().publicKey,
      };
      // As the agent does: the token key signs the identity; the token stays here.
      const request = {
        ...registrationProof(token ?? (await bed.userDataToken(instanceId)), identity),
        runnerId: identity.runnerId,
        publicKey: identity.publicKey,
        version: 'test',
        drivers: ['process' as const],
        hostname: instanceId,
      };
      // Like the agent: a runner may boot before the fleet has admitted it; it tries again.
      let grant: RegistrationGrant | undefined;
      for (let i = 0; !grant; i++) {
        try {
          grant = await registry.register(fleetRunnerName(instanceId), request);
        } catch (err) {
          if (!(err instanceof RunfleetError && err.code === 'NotFound') || i >= 100) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      // The registry tells the fleet by signal: wait until the fleet has taken it in.
      await until(
        `fleet ${fleetName} to take in the registration of ${instanceId}`,
        async () => {
          const rec = (await fleet.status(fleetName)).records.find((r) => r.instanceId === instanceId);
          return rec !== undefined && rec.state !== 'created';
        },
        { timeoutMs: 10_000, everyMs: 50 },
      );
      return grant;
    },
    async startWorker(client = ec2) {
      if (worker) return;
      const w = await createFleetWorker({
        connection,
        namespace: 'default',
        taskQueue,
        ec2: client,
        registry,
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
      control.shutdown();
      await controlDone;
      await clientConnection.close();
      await connection.close();
      ec2.destroy();
      await moto.stop();
    },
  };
  return bed;
}
