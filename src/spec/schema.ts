/**
 * The run spec: one zod schema for run files (YAML or JSON), client calls and direct
 * `temporal workflow start` input. Sandbox-safe: the run workflow validates with it too.
 */
import { z } from 'zod';
import { DEPEND_CONDITIONS, DRIVERS } from '../types';
import { parseDuration } from '../duration';

/** Limits, each with its reason. */
export const LIMITS = {
  /**
   * A run continues as new as its history grows (about 3.5 events a task), so its size is bounded
   * by its state, which travels compressed: 10,000 tasks is ~3 MiB of JSON, ~200 KiB gzipped.
   */
  maxTasks: 10_000,
  /** A task is a unit of scheduling; hundreds of steps belong in a script. */
  maxStepsPerTask: 100,
  /** A step is a shell command line, not a file: 64 KiB. */
  maxStepBytes: 64 * 1024,
  /**
   * The whole spec travels as one workflow argument. Temporal rejects payloads over 2 MiB; the
   * Runfleet client compresses large ones, a plain `temporal workflow start` cannot.
   */
  maxSpecBytes: 4 * 1024 * 1024,
  maxEnvVars: 200,
  /** Longer than a day is a service, not a CI task. */
  maxTimeoutMs: 24 * 3_600_000,
  defaultTimeoutMs: 3_600_000,
} as const;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const GROUP_RE = /^(\/[A-Za-z0-9_.-]+)+$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

const name = z
  .string()
  .regex(NAME_RE, 'must be 1-63 letters, digits, "_", "." or "-", starting with a letter or digit');

const duration = z
  .union([z.string(), z.number()])
  .describe('A duration: "90s", "10m", "1h30m", or a number of seconds')
  .transform((value, ctx) => {
    const ms = typeof value === 'number' ? value * 1000 : parseDuration(value);
    if (ms === null || !Number.isFinite(ms) || ms <= 0) {
      ctx.addIssue({ code: 'custom', message: `"${String(value)}" is not a duration like "90s", "10m" or "1h"` });
      return z.NEVER;
    }
    if (ms > LIMITS.maxTimeoutMs) {
      ctx.addIssue({ code: 'custom', message: `must be at most 24h` });
      return z.NEVER;
    }
    return ms;
  });

const env = z
  .record(z.string().regex(ENV_KEY_RE, 'environment variable names are letters, digits and "_"'), z.string())
  .refine((e) => Object.keys(e).length <= LIMITS.maxEnvVars, `at most ${LIMITS.maxEnvVars} variables`);

const step = z.union([
  z.string().min(1, 'a step is a non-empty shell command').max(LIMITS.maxStepBytes),
  z.strictObject({
    name: z.string().max(200).optional(),
    run: z.string().min(1, 'a step is a non-empty shell command').max(LIMITS.maxStepBytes),
  }),
]);

const depend = z.union([
  name.describe('A parent task, run on its success'),
  z.strictObject({
    task: name,
    conditions: z
      .array(z.enum(DEPEND_CONDITIONS))
      .min(1, 'list at least one condition')
      .default(['on_success'])
      .describe('Run this task when the parent ended in one of these states'),
  }),
]);

export const TaskSpecSchema = z
  .strictObject({
    name,
    steps: z
      .array(step)
      .min(1, 'a task needs at least one step')
      .max(LIMITS.maxStepsPerTask, `at most ${LIMITS.maxStepsPerTask} steps`),
    env: env.optional(),
    working_dir: z.string().min(1).max(4096).optional().describe('Absolute, or relative to the task workspace'),
    driver: z.enum(DRIVERS).default('process'),
    image: z.string().min(1).max(512).optional().describe('Container image, for the docker driver'),
    pool: name.default('default'),
    fleet: z
      .strictObject({
        name: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$/, 'must be a fleet name (1-41 letters, digits, "_" or "-")'),
        class: z
          .string()
          .regex(
            /^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$/,
            'must be a resource class name (1-41 letters, digits, "_" or "-")',
          ),
      })
      .optional()
      .describe('Run on an instance of this EC2 fleet resource class, claimed for the task and released after it'),
    depends: z.array(depend).default([]),
    timeout: duration.optional().describe('Time the task may run once started (default 1h)'),
    ignore_failure: z.boolean().default(false).describe('A failure does not fail the run; dependents see success'),
    needs_approval: z.boolean().default(false).describe('Wait for `runfleet run approve` before starting'),
    idempotent: z.boolean().default(false).describe('May be run again when its runner is lost'),
  })
  .superRefine((task, ctx) => {
    if (task.driver === 'docker' && !task.image) {
      ctx.addIssue({ code: 'custom', path: ['image'], message: 'the docker driver needs an image' });
    }
    if (task.driver === 'process' && task.image) {
      ctx.addIssue({ code: 'custom', path: ['image'], message: 'image is only for the docker driver' });
    }
    if (task.fleet && task.pool !== 'default') {
      ctx.addIssue({
        code: 'custom',
        path: ['pool'],
        message: `a fleet task runs in its resource class's pool ("${task.fleet.name}-${task.fleet.class}"): drop pool`,
      });
    }
  });

export const RunSpecSchema = z.strictObject({
  name: z.string().min(1, 'a run needs a name').max(200),
  group: z
    .string()
    .max(256)
    .regex(GROUP_RE, 'must be a path like /project/42/main (segments of letters, digits, "_", "." or "-")')
    .default('/default'),
  env: env.optional().describe('Environment for every task (a task env overrides it)'),
  tasks: z.array(TaskSpecSchema).max(LIMITS.maxTasks, `a run has at most ${LIMITS.maxTasks} tasks`),
});

/** What a run file holds, before defaults. */
export type RunSpecInput = z.input<typeof RunSpecSchema>;
/** A validated run spec, with defaults filled in and durations in milliseconds. */
export type RunSpec = z.output<typeof RunSpecSchema>;
export type TaskSpec = z.output<typeof TaskSpecSchema>;

/** Tuning of one run's scheduling; every field has a default. */
export const RunOptionsSchema = z.strictObject({
  /** How long a reservation waits for a runner of the pool to answer before it is asked again. */
  reservationTimeout: duration.default(60_000),
  /** A reserved slot not used in this time is given back; also how long execution may wait to start. */
  evictionTimeout: duration.default(30_000),
  /** After a task, how long its runner keeps the lease for the run's next task. */
  leaseLinger: duration.default(2_000),
  /** A started task whose runner is silent this long is lost (runners heartbeat every second). */
  heartbeatTimeout: duration.default(10_000),
  /** How many times an idempotent task may be started in all. */
  maxAttempts: z.number().int().min(1).max(10).default(3),
  /**
   * Pins the run to one runner (scheduled runs): every reservation goes to that runner's own
   * reservation queue instead of the pools', so no other runner takes its tasks. Default: none.
   */
  runner: name.optional(),
});
export type RunOptions = z.output<typeof RunOptionsSchema>;

/** A succeeded task carried over from the run being restarted. */
const KeptTaskSchema = z.strictObject({
  runner: z.string().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  exitCode: z.number().int().nullable(),
  attempts: z.number().int().min(0),
});
export type KeptTask = z.output<typeof KeptTaskSchema>;

/** A restart: the run it restarts and the succeeded tasks it keeps (they do not run again). */
export const RestartSchema = z.strictObject({
  of: z.string().min(1).max(1000),
  keep: z.record(z.string(), KeptTaskSchema).default({}),
});
export type Restart = z.output<typeof RestartSchema>;

/** A run limited by a changegroup: queued until the changegroup admits it. */
export const AdmissionSchema = z.strictObject({ changegroup: z.string().min(1).max(200) });

/** The run workflow's single argument. */
export const RunInputSchema = z.strictObject({
  spec: z.unknown(),
  options: z.unknown().optional(),
  restart: z.unknown().optional(),
  admission: z.unknown().optional(),
  resume: z.unknown().optional(),
});
