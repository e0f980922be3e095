/**
 * The desired state of an EC2 runner fleet: one YAML file (`examples/fleet.yaml`), validated with
 * zod here, by the CLI before anything is sent, and again by the fleet workflow's update
 * validators (so `temporal workflow update` directly is just as safe).
 *
 * Rules across fields (a minIdle above maxInstances, a rotation longer than the lifetime) are in
 * `validate.ts`, so they are reported alongside every other problem, not only once the rest is valid.
 *
 * Sandbox-safe: imports zod and sandbox-safe src modules only.
 */
import { z } from 'zod';
import { formatDuration, parseDuration } from '../duration';
import { SettingsPatchSchema } from '../registry/state';

/** Limits, each with its reason. */
export const FLEET_LIMITS = {
  /**
   * One fleet workflow holds every record, and continue-as-new carries them in one payload
   * (Temporal's limit: 2 MiB). An instance costs ~0.5 KB (record, heartbeat, registration):
   * 2,000 stay near 1 MiB. A bigger fleet is several fleets.
   */
  maxInstancesTotal: 2_000,
  /** One launch template per class; a handful of classes is normal, 50 is a lot. */
  maxResourceClasses: 50,
  /** EC2 allows 5 security groups per network interface. */
  maxSecurityGroups: 5,
  /** EC2 allows 50 tags per resource; Runfleet adds 3 of its own. */
  maxTags: 40,
  /** EC2 caps user data at 16 KiB before base64. */
  maxUserDataBytes: 16 * 1024,
  /** An instance older than a week is a pet, not a CI runner. */
  maxLifetimeMs: 7 * 86_400_000,
} as const;

/** Where the registration token goes in the user data: replaced at launch, never stored in a template. */
export const TOKEN_PLACEHOLDER = '{{token}}';
/** Also replaced at launch: the instance's resource class (its pool). */
export const CLASS_PLACEHOLDER = '{{resourceClass}}';

/** Tags Runfleet sets on everything it creates; users may not set them. */
export const FLEET_TAG = 'runfleet:fleet';
export const CLASS_TAG = 'runfleet:class';
export const MANAGED_TAG = 'runfleet:managed-by';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$/;
const name = z.string().regex(NAME_RE, 'must be 1-41 letters, digits, "_" or "-", starting with a letter or digit');

/** A duration: "90s", "10m", "1h30m", or a number of seconds; becomes milliseconds. */
function duration(maxMs: number) {
  return z.union([z.string(), z.number()]).transform((value, ctx) => {
    const ms = typeof value === 'number' ? value * 1000 : parseDuration(value);
    if (ms === null || !Number.isFinite(ms) || ms <= 0) {
      ctx.addIssue({ code: 'custom', message: `"${String(value)}" is not a duration like "90s", "10m" or "1h"` });
      return z.NEVER;
    }
    if (ms > maxMs) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${formatDuration(maxMs)}` });
      return z.NEVER;
    }
    return ms;
  });
}

const awsId = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}-[0-9a-z]{1,32}$`), `must be an id like ${prefix}-0123456789abcdef0`);

export const ResourceClassSchema = z.strictObject({
  name,
  instanceType: z.string().regex(/^[a-z0-9-]+\.[a-z0-9]+$/, 'must be an EC2 instance type like t3.large'),
  /** Idle instances kept warm for this class. Default 0. */
  minIdle: z.number().int('must be a whole number').min(0, 'must be 0 or more').default(0),
  /** Instances of this class at most, whatever their state. */
  maxInstances: z.number().int('must be a whole number').min(1, 'must be at least 1').max(1000, 'must be at most 1000'),
});

export const FleetSpecSchema = z.strictObject({
  /** The fleet's name: its workflow is `fleet/<name>`, its EC2 resources are tagged with it. */
  name,
  launchTemplate: z.strictObject({
    ami: awsId('ami'),
    /** IAM instance profile name or ARN. Default: none. */
    instanceProfile: z.string().min(1).max(2048).optional(),
    /** The boot script; it starts `runfleet runner serve` with {{token}}, replaced at launch. */
    userData: z
      .string()
      .max(FLEET_LIMITS.maxUserDataBytes, `must be at most ${FLEET_LIMITS.maxUserDataBytes} bytes`)
      .refine(
        (s) => s.includes(TOKEN_PLACEHOLDER),
        `must contain ${TOKEN_PLACEHOLDER} (the registration token, set at launch)`,
      )
      .refine((s) => s.includes('runfleet runner serve'), 'must start the runner ("runfleet runner serve")'),
    securityGroups: z
      .array(awsId('sg'))
      .min(1, 'list at least one security group')
      .max(FLEET_LIMITS.maxSecurityGroups, `at most ${FLEET_LIMITS.maxSecurityGroups} security groups`),
  }),
  resourceClasses: z
    .array(ResourceClassSchema)
    .min(1, 'list at least one resource class')
    .max(FLEET_LIMITS.maxResourceClasses, `at most ${FLEET_LIMITS.maxResourceClasses} resource classes`),
  /** An instance is terminated this long after launch, idle or not (after its current task). */
  maxLifetime: duration(FLEET_LIMITS.maxLifetimeMs).default(6 * 3_600_000),
  /** An idle instance is terminated after this long without a task. */
  maxIdleTime: duration(FLEET_LIMITS.maxLifetimeMs).default(30 * 60_000),
  subnets: z.array(awsId('subnet')).min(1, 'list at least one subnet').max(100),
  tags: z
    .record(
      z
        .string()
        .min(1)
        .max(128)
        .refine((k) => !/^(aws|runfleet):/i.test(k), 'tag keys starting with "aws:" or "runfleet:" are reserved'),
      z.string().max(256),
    )
    .refine((t) => Object.keys(t).length <= FLEET_LIMITS.maxTags, `at most ${FLEET_LIMITS.maxTags} tags`)
    .default({}),
  token: z
    .strictObject({
      /** A registration token stops registering runners after this long. */
      lifetime: duration(7 * 86_400_000).default(3_600_000),
      /** A new token is minted this often; shorter than the lifetime, so one is always valid. */
      rotation: duration(7 * 86_400_000).default(30 * 60_000),
    })
    .prefault({}),
  /** Time between periodic refreshes. */
  refreshInterval: duration(86_400_000).default(60_000),
  /** A launched instance whose runner has not registered after this long is terminated. */
  registrationTimeout: duration(3_600_000).default(5 * 60_000),
  /**
   * A tagged instance with no record is terminated only once it is this old: a launch whose
   * record is not written yet (or an instance EC2 does not list yet) must not be mistaken for a leak.
   */
  orphanGrace: duration(3_600_000).default(2 * 60_000),
  /**
   * Settings of the fleet's runners (slots, heartbeat, watchdog, ...), as `runner settings`
   * takes them; each launched instance's registry runner starts with them. Default: the registry's.
   */
  runnerSettings: SettingsPatchSchema.optional(),
});

/** What a fleet file holds, before defaults. */
export type FleetSpecInput = z.input<typeof FleetSpecSchema>;
/** A validated fleet spec: defaults filled in, durations in milliseconds. */
export type FleetSpec = z.output<typeof FleetSpecSchema>;
export type ResourceClass = z.output<typeof ResourceClassSchema>;
