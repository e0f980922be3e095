/**
 * EC2 activities of the fleet workflow, through `@aws-sdk/client-ec2`. Each is idempotent: a
 * retry after a crash or a timeout converges on the same result (a launch template version is
 * made only when none matches; TerminateInstances on a terminated instance is a no-op).
 *
 * Calls in flight are bounded (`maxInFlight`) across all activities of the worker, so a refresh
 * of thousands of instances does not trip EC2's request rate limits. Throttling and transient
 * errors are retried by the SDK (the worker configures its retry mode) and then by Temporal;
 * mistakes in the desired state (an unknown AMI or subnet) fail at once with `InvalidConfig`.
 */
import {
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  DeleteLaunchTemplateCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeLaunchTemplatesCommand,
  ModifyLaunchTemplateCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2Client,
  type Instance,
  type RequestLaunchTemplateData,
  type ResponseLaunchTemplateData,
} from '@aws-sdk/client-ec2';
import type { Logger } from '@temporalio/common';
import { failure } from '../src/failures';
import {
  diffTemplate,
  type Ec2State,
  type Observed,
  type ObservedInstance,
  type ObservedTemplate,
  type TemplateData,
} from '../src/fleet/plan';
import { CLASS_PLACEHOLDER, CLASS_TAG, FLEET_TAG, TOKEN_PLACEHOLDER } from '../src/fleet/schema';
import { deriveToken, instanceToken, tokenHash } from '../src/fleet/token';

/** EC2 calls one activity made, by kind (a no-drift refresh must make zero mutating ones). */
export interface Ec2Calls {
  read: number;
  mutating: number;
}

export interface EnsureTemplateRequest {
  name: string;
  fleet: string;
  data: TemplateData;
}

export interface EnsureTemplateResult {
  templateId: string;
  action: 'created' | 'new-version' | 'made-default' | 'unchanged';
  defaultVersion: number;
  calls: Ec2Calls;
}

export interface LaunchRequest {
  fleet: string;
  resourceClass: string;
  template: string;
  count: number;
  subnet: string;
  /**
   * The fleet's current token, by id. Each instance's user data gets a token of its own derived
   * from it (the worker derives them: the workflow never sees one).
   */
  tokenId: string | null;
  /**
   * Same token, same launch: EC2 returns the first launch's instances on a retry. Slot `i` is
   * launched with client token `<clientToken>-<i>` (at most 64 characters: a UUID is 36).
   */
  clientToken: string;
  /** Tags for the instances on top of the template's (the class, the fleet). */
  tags: Record<string, string>;
}

export interface LaunchedInstance {
  instanceId: string;
  launchTime: string;
  /**
   * The token in this instance's user data, by id and sha256 (never the token): its registry
   * runner accepts this one only. Absent when launched without a token, or by an older worker
   * (which gave every instance the fleet token).
   */
  token?: { id: string; hash: string };
}

export interface LaunchResult {
  instances: LaunchedInstance[];
  calls: Ec2Calls;
}

export interface TerminateResult {
  /** EC2 reports them shutting down or terminated. */
  confirmed: string[];
  /** EC2 does not know them (gone long ago, or not visible yet: the caller decides). */
  notFound: string[];
  /** Still running after the call: try again. */
  pending: string[];
  calls: Ec2Calls;
}

export interface Ec2Activities {
  observeFleet(req: { fleet: string }): Promise<Observed & { calls: Ec2Calls }>;
  ensureLaunchTemplate(req: EnsureTemplateRequest): Promise<EnsureTemplateResult>;
  deleteLaunchTemplate(req: { templateId: string }): Promise<{ calls: Ec2Calls }>;
  launchInstances(req: LaunchRequest): Promise<LaunchResult>;
  terminateInstances(req: { instanceIds: string[] }): Promise<TerminateResult>;
  /** Hash of a token by id: the clear token never enters workflow history when it is minted. */
  registrationTokenHash(req: { fleet: string; tokenId: string }): Promise<{ hash: string }>;
}

export interface Ec2ActivityDeps {
  ec2: EC2Client;
  log: Logger;
  /** EC2 calls in flight at once, across the worker's activities. Default 8. */
  maxInFlight?: number;
  /** Secret the registration tokens derive from (the same on every fleet worker). */
  tokenSecret: string;
}

/** TerminateInstances and DescribeInstances take up to 1,000 ids; smaller batches fail smaller. */
const BATCH = 200;
/** DescribeInstances page size (EC2's maximum). */
const PAGE = 1000;

/** Error codes that mean the desired state is wrong: retrying cannot help. */
const USER_FAULT =
  /^(InvalidAMIID\.|InvalidSubnetID\.|InvalidGroup\.|InvalidSecurityGroupID|InvalidParameterValue|InvalidParameterCombination|InvalidIamInstanceProfile|InvalidInstanceType|InvalidUserData|Unsupported)/;

export function createEc2Activities(deps: Ec2ActivityDeps): Ec2Activities {
  const limit = semaphore(deps.maxInFlight ?? 8);

  /** One EC2 call, bounded and counted; desired-state mistakes become non-retryable failures. */
  async function call<T>(calls: Ec2Calls, mutating: boolean, command: object): Promise<T> {
    if (mutating) calls.mutating++;
    else calls.read++;
    try {
      return (await limit(() => deps.ec2.send(command as never))) as T;
    } catch (err) {
      const code = errorCode(err);
      if (USER_FAULT.test(code))
        throw failure(
          'InvalidConfig',
          `EC2 refused ${command.constructor.name.replace(/Command$/, '')}: ${code}: ${(err as Error).message}`,
        );
      throw err;
    }
  }

  async function describeTemplate(calls: Ec2Calls, id: string, name: string): Promise<ObservedTemplate> {
    const out = await call<{
      LaunchTemplateVersions?: {
        VersionNumber?: number;
        DefaultVersion?: boolean;
        LaunchTemplateData?: ResponseLaunchTemplateData;
      }[];
    }>(
      calls,
      false,
      new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: id, Versions: ['$Default', '$Latest'] }),
    );
    const versions = out.LaunchTemplateVersions ?? [];
    const def = versions.find((v) => v.DefaultVersion) ?? versions[0];
    const latest = versions.reduce((m, v) => ((v.VersionNumber ?? 0) > (m.VersionNumber ?? 0) ? v : m), def ?? {});
    return {
      name,
      id,
      defaultVersion: def?.VersionNumber ?? 0,
      latestVersion: latest.VersionNumber ?? 0,
      defaultData: fromEc2(def?.LaunchTemplateData),
      latestData: fromEc2(latest.LaunchTemplateData),
    };
  }

  return {
    async observeFleet({ fleet }) {
      const calls: Ec2Calls = { read: 0, mutating: 0 };
      const observedAt = new Date().toISOString();
      const tagFilter = { Name: `tag:${FLEET_TAG}`, Values: [fleet] };
      const templates: ObservedTemplate[] = [];
      const found: { id: string; name: string }[] = [];
      let next: string | undefined;
      do {
        const page: {
          LaunchTemplates?: { LaunchTemplateId?: string; LaunchTemplateName?: string }[];
          NextToken?: string;
        } = await call(
          calls,
          false,
          new DescribeLaunchTemplatesCommand({ Filters: [tagFilter], MaxResults: 200, NextToken: next }),
        );
        for (const t of page.LaunchTemplates ?? [])
          if (t.LaunchTemplateId && t.LaunchTemplateName)
            found.push({ id: t.LaunchTemplateId, name: t.LaunchTemplateName });
        next = page.NextToken;
      } while (next);
      templates.push(...(await Promise.all(found.map((t) => describeTemplate(calls, t.id, t.name)))));

      const instances: ObservedInstance[] = [];
      next = undefined;
      do {
        const page: { Reservations?: { Instances?: Instance[] }[]; NextToken?: string } = await call(
          calls,
          false,
          new DescribeInstancesCommand({
            // Terminated instances linger in EC2 for an hour; they are not ours to act on.
            Filters: [
              tagFilter,
              { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] },
            ],
            MaxResults: PAGE,
            NextToken: next,
          }),
        );
        for (const r of page.Reservations ?? [])
          for (const i of r.Instances ?? []) if (i.InstanceId) instances.push(observedInstance(i));
        next = page.NextToken;
      } while (next);
      return { templates, instances, observedAt, calls };
    },

    async ensureLaunchTemplate(req) {
      const calls: Ec2Calls = { read: 0, mutating: 0 };
      const existing = await call<{ LaunchTemplates?: { LaunchTemplateId?: string }[] }>(
        calls,
        false,
        new DescribeLaunchTemplatesCommand({ Filters: [{ Name: 'launch-template-name', Values: [req.name] }] }),
      );
      const id = existing.LaunchTemplates?.[0]?.LaunchTemplateId;
      if (!id) {
        const created = await call<{ LaunchTemplate?: { LaunchTemplateId?: string } }>(
          calls,
          true,
          new CreateLaunchTemplateCommand({
            LaunchTemplateName: req.name,
            VersionDescription: 'runfleet',
            LaunchTemplateData: toEc2(req.data),
            TagSpecifications: [{ ResourceType: 'launch-template', Tags: [{ Key: FLEET_TAG, Value: req.fleet }] }],
          }),
        );
        deps.log.info('launch template created', { name: req.name, imageId: req.data.imageId });
        return {
          templateId: created.LaunchTemplate?.LaunchTemplateId ?? '',
          action: 'created',
          defaultVersion: 1,
          calls,
        };
      }
      // Decide again from what EC2 says now: a retry after a crash must not add a second version.
      const t = await describeTemplate(calls, id, req.name);
      if (diffTemplate(t.defaultData, req.data).length === 0)
        return { templateId: id, action: 'unchanged', defaultVersion: t.defaultVersion, calls };
      let version = t.latestVersion;
      let action: EnsureTemplateResult['action'] = 'made-default';
      if (t.latestVersion === t.defaultVersion || diffTemplate(t.latestData, req.data).length > 0) {
        const v = await call<{ LaunchTemplateVersion?: { VersionNumber?: number } }>(
          calls,
          true,
          new CreateLaunchTemplateVersionCommand({
            LaunchTemplateId: id,
            VersionDescription: 'runfleet',
            LaunchTemplateData: toEc2(req.data),
          }),
        );
        version = v.LaunchTemplateVersion?.VersionNumber ?? t.latestVersion + 1;
        action = 'new-version';
      }
      await call(
        calls,
        true,
        new ModifyLaunchTemplateCommand({ LaunchTemplateId: id, DefaultVersion: String(version) }),
      );
      deps.log.info('launch template updated', { name: req.name, version, imageId: req.data.imageId });
      return { templateId: id, action, defaultVersion: version, calls };
    },

    async deleteLaunchTemplate({ templateId }) {
      const calls: Ec2Calls = { read: 0, mutating: 0 };
      try {
        await call(calls, true, new DeleteLaunchTemplateCommand({ LaunchTemplateId: templateId }));
      } catch (err) {
        if (!errorCode(err).startsWith('InvalidLaunchTemplateId.NotFound')) throw err;
      }
      return { calls };
    },

    async launchInstances(req) {
      const calls: Ec2Calls = { read: 0, mutating: 0 };
      const template = await call<{ LaunchTemplateVersions?: { LaunchTemplateData?: ResponseLaunchTemplateData }[] }>(
        calls,
        false,
        new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: req.template, Versions: ['$Default'] }),
      );
      const userData = fromEc2(template.LaunchTemplateVersions?.[0]?.LaunchTemplateData).userData;
      // One RunInstances per instance: user data is per call, and each instance gets a token of
      // its own (the calls run side by side, within maxInFlight).
      const launchOne = async (slot: number): Promise<LaunchedInstance[]> => {
        const token = req.tokenId
          ? instanceToken(deps.tokenSecret, req.fleet, req.tokenId, req.clientToken, slot)
          : null;
        const rendered = userData
          .split(TOKEN_PLACEHOLDER)
          .join(token?.token ?? '')
          .split(CLASS_PLACEHOLDER)
          .join(req.resourceClass);
        const out = await call<{ Instances?: Instance[] }>(
          calls,
          true,
          new RunInstancesCommand({
            MinCount: 1,
            MaxCount: 1,
            LaunchTemplate: { LaunchTemplateName: req.template, Version: '$Default' },
            SubnetId: req.subnet,
            // The token goes in at launch, never into the template: rotating it is no template drift.
            UserData: Buffer.from(rendered, 'utf8').toString('base64'),
            ClientToken: `${req.clientToken}-${slot}`,
            TagSpecifications: [
              { ResourceType: 'instance', Tags: Object.entries(req.tags).map(([Key, Value]) => ({ Key, Value })) },
            ],
          }),
        );
        return (out.Instances ?? []).map((i) => ({
          instanceId: i.InstanceId ?? '',
          launchTime: (i.LaunchTime ?? new Date()).toISOString(),
          ...(token ? { token: { id: token.id, hash: token.hash } } : {}),
        }));
      };
      const settled = await Promise.allSettled(Array.from({ length: req.count }, (_, slot) => launchOne(slot)));
      const instances = settled.flatMap((s) => (s.status === 'fulfilled' ? s.value : []));
      const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
      // Nothing launched: the error is the answer. Some launched: they are kept (their records and
      // runners follow), and the next refresh launches what is still missing.
      if (instances.length === 0 && failed[0]) throw failed[0].reason;
      if (failed.length > 0)
        deps.log.warn('some launches failed', {
          fleet: req.fleet,
          resourceClass: req.resourceClass,
          failed: failed.length,
          error: String((failed[0]?.reason as Error)?.message ?? failed[0]?.reason),
        });
      deps.log.info('instances launched', {
        fleet: req.fleet,
        resourceClass: req.resourceClass,
        count: instances.length,
      });
      return { instances, calls };
    },

    async terminateInstances({ instanceIds }) {
      const calls: Ec2Calls = { read: 0, mutating: 0 };
      const result: TerminateResult = { confirmed: [], notFound: [], pending: [], calls };
      const terminate = async (ids: string[]): Promise<void> => {
        try {
          const out = await call<{
            TerminatingInstances?: { InstanceId?: string; CurrentState?: { Name?: string } }[];
          }>(calls, true, new TerminateInstancesCommand({ InstanceIds: ids }));
          const states = new Map(
            (out.TerminatingInstances ?? []).map((t) => [t.InstanceId, t.CurrentState?.Name] as const),
          );
          for (const id of ids) {
            const s = states.get(id);
            if (s === 'shutting-down' || s === 'terminated') result.confirmed.push(id);
            else result.pending.push(id);
          }
        } catch (err) {
          if (
            !errorCode(err).startsWith('InvalidInstanceID.NotFound') &&
            !errorCode(err).startsWith('InvalidInstanceID.Malformed')
          )
            throw err;
          // One unknown id fails the whole batch: find which, one by one.
          if (ids.length === 1) result.notFound.push(ids[0] as string);
          else await Promise.all(ids.map((id) => terminate([id])));
        }
      };
      const batches: string[][] = [];
      for (let i = 0; i < instanceIds.length; i += BATCH) batches.push(instanceIds.slice(i, i + BATCH));
      await Promise.all(batches.map(terminate));
      if (result.confirmed.length + result.notFound.length > 0)
        deps.log.info('instances terminated', {
          confirmed: result.confirmed.length,
          notFound: result.notFound.length,
          pending: result.pending.length,
        });
      return result;
    },

    async registrationTokenHash({ fleet, tokenId }) {
      return { hash: tokenHash(deriveToken(deps.tokenSecret, fleet, tokenId)) };
    },
  };
}

function observedInstance(i: Instance): ObservedInstance {
  const tag = (k: string) => i.Tags?.find((t) => t.Key === k)?.Value ?? null;
  return {
    instanceId: i.InstanceId ?? '',
    state: (i.State?.Name ?? 'pending') as Ec2State,
    resourceClass: tag(CLASS_TAG),
    launchTime: (i.LaunchTime ?? new Date(0)).toISOString(),
  };
}

export function toEc2(d: TemplateData): RequestLaunchTemplateData {
  return {
    ImageId: d.imageId,
    InstanceType: d.instanceType as RequestLaunchTemplateData['InstanceType'],
    ...(d.instanceProfile
      ? {
          IamInstanceProfile: d.instanceProfile.startsWith('arn:')
            ? { Arn: d.instanceProfile }
            : { Name: d.instanceProfile },
        }
      : {}),
    UserData: Buffer.from(d.userData, 'utf8').toString('base64'),
    SecurityGroupIds: d.securityGroupIds,
    TagSpecifications: [
      { ResourceType: 'instance', Tags: Object.entries(d.instanceTags).map(([Key, Value]) => ({ Key, Value })) },
    ],
  };
}

export function fromEc2(d: ResponseLaunchTemplateData | undefined): TemplateData {
  const tags = d?.TagSpecifications?.find((t) => t.ResourceType === 'instance')?.Tags ?? [];
  return {
    imageId: d?.ImageId ?? '',
    instanceType: d?.InstanceType ?? '',
    instanceProfile: d?.IamInstanceProfile?.Arn ?? d?.IamInstanceProfile?.Name ?? null,
    userData: d?.UserData ? Buffer.from(d.UserData, 'base64').toString('utf8') : '',
    securityGroupIds: [...(d?.SecurityGroupIds ?? [])].sort(),
    instanceTags: Object.fromEntries(tags.filter((t) => t.Key).map((t) => [t.Key as string, t.Value ?? ''])),
  };
}

function errorCode(err: unknown): string {
  const e = err as { name?: string; Code?: string };
  return e?.Code ?? e?.name ?? '';
}

/** At most `n` calls of the returned function's argument run at once; the rest wait in order. */
function semaphore(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    // A finished call hands its slot straight to the next waiter, so a newcomer cannot slip in between.
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}
