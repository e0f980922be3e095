/**
 * The run spec: one zod schema for run files (YAML or JSON), client calls and direct
 * `temporal workflow start` input. Sandbox-safe: the run workflow validates with it too.
 */
import { z } from 'zod';
import { DEPEND_CONDITIONS, DRIVERS, PULL_POLICIES } from '../types';
import { parseByteSize, parseCpu, utf8Length } from '../bytes';
import { parseDuration } from '../duration';
import { K8S_LABEL_KEY_RE, K8S_LABEL_VALUE_RE, K8S_NAME_RE, LABEL_KEY_RE, LABEL_VALUE_RE } from '../labels';
import { workingDirProblem } from './working-dir';

/** One problem of a spec: where, and what is wrong there. */
export interface SpecProblem {
  /** `tasks.build.timeout`, `group`, ... */
  path: string;
  message: string;
}

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
  /**
   * A task's environment (the run's env and its own, together) in bytes: Linux refuses an exec
   * whose arguments and environment pass 2 MiB (ARG_MAX with the default 8 MiB stack), so the
   * limit leaves room for the runner's own variables and the steps.
   */
  maxEnvBytes: 1536 * 1024,
  /** Longer than a day is a service, not a CI task. */
  maxTimeoutMs: 24 * 3_600_000,
  defaultTimeoutMs: 3_600_000,
  /** Retries of one task: past ten, a flaky task needs fixing, not more attempts. */
  maxRetries: 10,
  /** The first retry's wait; each next one doubles it. */
  defaultRetryBackoffMs: 10_000,
  /**
   * No retry waits longer than this: the ten doublings of a 10s backoff would reach 85 min, and
   * a run that sits that long on one task has its runners' leases lapse for nothing.
   */
  maxRetryBackoffMs: 600_000,
  /** Labels a task asks for: a selector, not an inventory (a runner carries its own labels). */
  maxRunsOnLabels: 16,
  /** Cells of one matrix task (GitHub Actions' own bound): a wider one is a separate run. */
  maxMatrixCells: 256,
  /** Keys of one matrix: each is a dimension, and every cell's name spells all of them. */
  maxMatrixKeys: 16,
  /** Paths in `artifacts` or a cache, and tasks in `artifacts_from`. */
  maxPathPatterns: 32,
  /** Names in a `secret_env` list: a run has a few secrets, not a vault. */
  maxSecretEnv: 100,
  /** A matrix value is a version, a platform, a flag: it is spelled into the cell's name too. */
  maxMatrixValueLength: 256,
  /**
   * The spec once matrices are expanded: the run workflow holds it for the whole run (on every
   * worker that caches the run), and a 4 MiB file could otherwise grow 256-fold.
   */
  maxExpandedSpecBytes: 16 * 1024 * 1024,
} as const;

/** What ended an attempt that `retry.on` may retry. A lost task is never one (see `idempotent`). */
export const RETRY_ON = ['failed', 'timeout'] as const;
export type RetryOn = (typeof RETRY_ON)[number];

/** A task, pool or runner name; a matrix cell's name follows it too (`src/spec/matrix.ts`). */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const GROUP_RE = /^(\/[A-Za-z0-9_.-]+)+$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** An environment's size as the kernel counts it: `NAME=value\0` in UTF-8 for each variable. */
export function envBytes(e: Record<string, string> | undefined): number {
  let total = 0;
  for (const [k, v] of Object.entries(e ?? {})) total += utf8Length(k) + utf8Length(v) + 2;
  return total;
}

/** Bounds of a container's limits whatever the runner allows, each with its reason. */
export const CONTAINER_BOUNDS = {
  /** Docker refuses a memory limit under 6 MiB. */
  minMemoryBytes: 6 * 2 ** 20,
  /** A limit beyond 1 TiB is no limit. */
  maxMemoryBytes: 2 ** 40,
  /** The task script's shell, a step and its children. */
  minPids: 8,
  /** Linux's own ceiling (pid_max). */
  maxPids: 4_194_304,
  /** CPU in millicores (1000 = one core): a thousandth of a core is Kubernetes' smallest unit. */
  minCpuMillis: 1,
  /** More cores than any one machine has. */
  maxCpuMillis: 1024 * 1000,
} as const;

/** A task's `retry`, parsed: waits in milliseconds, `on` without duplicates. */
export interface TaskRetry {
  /** Retries after the first attempt (1-10): at most `limit + 1` attempts in all. */
  limit: number;
  /** Wait before the first retry; retry n waits `min(backoffMs * 2^(n-1), maxBackoffMs)`. */
  backoffMs: number;
  /** The cap of a retry's wait: `LIMITS.maxRetryBackoffMs` (10 min). */
  maxBackoffMs: number;
  /** What is retried: a non-zero exit (`failed`), the task's `timeout` (`timeout`). */
  on: RetryOn[];
}

/** Holds a `${{ matrix.KEY }}` reference (`src/spec/matrix.ts` substitutes them). */
const MATRIX_REFERENCE_RE = /\$\{\{\s*matrix\./;

/** The environment variable that holds a matrix key's value in each cell: `node` -> `MATRIX_NODE`. */
export function matrixVariable(key: string): string {
  return `MATRIX_${key.toUpperCase()}`;
}

/**
 * Builds the run spec's schemas. Called once, below: `runSchemas()` answers that set. It is not
 * exported as values on purpose. The workflow bundle preloads this module once per worker thread
 * (WORKFLOW_PRELOAD_MODULES, src/codec/index.ts), and the SDK deep-freezes every preloaded
 * module's exports; zod 4 builds a schema's methods on first use, which a frozen schema refuses.
 * Kept out of the exports, the set is built once per thread, not once per run, and stays usable.
 */
function defineRunSchemas() {
  /**
   * A regex of its own for each check: zod resets a check's `lastIndex`, which a frozen one
   * refuses, and an exported regex (NAME_RE, src/labels.ts's) is frozen in the sandbox.
   */
  const pattern = (re: RegExp) => new RegExp(re.source, re.flags);

  const name = z
    .string()
    .regex(pattern(NAME_RE), 'must be 1-63 letters, digits, "_", "." or "-", starting with a letter or digit');

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
    .record(
      z.string().regex(pattern(ENV_KEY_RE), 'environment variable names are letters, digits and "_"'),
      // A NUL cannot be passed to a process (exec cuts the value there) and garbles every message.
      z.string().refine((v) => !v.includes('\u0000'), 'an environment value cannot hold a NUL character'),
    )
    .refine((e) => Object.keys(e).length <= LIMITS.maxEnvVars, `at most ${LIMITS.maxEnvVars} variables`);

  /** A path inside the task's workspace (`src/spec/working-dir.ts`); the runner checks it again on disk. */
  const workingDir = z
    .string()
    .min(1)
    .max(4096)
    .superRefine((value, ctx) => {
      const problem = workingDirProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });

  const cpu = z
    .union([z.string(), z.number()])
    .describe('Cores ("2", 0.5) or millicores ("500m")')
    .transform((value, ctx) => {
      const millis = parseCpu(value);
      if (millis === null) {
        ctx.addIssue({ code: 'custom', message: `"${String(value)}" is not a CPU amount like "500m", "2" or 0.5` });
        return z.NEVER;
      }
      if (millis < CONTAINER_BOUNDS.minCpuMillis || millis > CONTAINER_BOUNDS.maxCpuMillis) {
        ctx.addIssue({ code: 'custom', message: 'must be between 1m and 1024 cores' });
        return z.NEVER;
      }
      return millis;
    });

  const nodeSelector = z
    .record(
      z
        .string()
        .regex(pattern(K8S_LABEL_KEY_RE), 'must be a Kubernetes label key like "kubernetes.io/arch" or "disktype"'),
      z
        .string()
        .regex(pattern(K8S_LABEL_VALUE_RE), 'must be a Kubernetes label value (63 letters, digits, "_", "." or "-")'),
    )
    .refine((m) => Object.keys(m).length <= 32, 'at most 32 labels');

  const memory = z
    .union([z.string(), z.number()])
    .describe('Bytes, or a size: "512Mi", "2Gi", "1G"')
    .transform((value, ctx) => {
      const bytes = parseByteSize(value);
      if (bytes === null) {
        ctx.addIssue({ code: 'custom', message: `"${String(value)}" is not a size like "512Mi" or "2Gi"` });
        return z.NEVER;
      }
      if (bytes < CONTAINER_BOUNDS.minMemoryBytes || bytes > CONTAINER_BOUNDS.maxMemoryBytes) {
        ctx.addIssue({ code: 'custom', message: 'must be between 6Mi and 1Ti' });
        return z.NEVER;
      }
      return bytes;
    });

  const resources = z.strictObject({
    memory: memory.optional().describe("Memory limit, swap included (default and maximum: the runner's)"),
    pids: z
      .number()
      .int('must be a whole number')
      .min(CONTAINER_BOUNDS.minPids, `must be at least ${CONTAINER_BOUNDS.minPids}`)
      .max(CONTAINER_BOUNDS.maxPids, `must be at most ${CONTAINER_BOUNDS.maxPids}`)
      .optional()
      .describe("Most processes and threads at once (default and maximum: the runner's)"),
    cpu: cpu.optional().describe("CPU limit, and the kubernetes driver's request (default and maximum: the runner's)"),
  });

  const step = z.union([
    z.string().min(1, 'a step is a non-empty shell command').max(LIMITS.maxStepBytes),
    z.strictObject({
      name: z.string().max(200).optional(),
      run: z.string().min(1, 'a step is a non-empty shell command').max(LIMITS.maxStepBytes),
    }),
  ]);

  const retry = z
    .strictObject({
      limit: z
        .number()
        .int('must be a whole number')
        .min(1, 'must be at least 1')
        .max(LIMITS.maxRetries, `must be at most ${LIMITS.maxRetries}`)
        .describe('How many times the task may be started again after its first attempt'),
      backoff: duration
        .refine((ms) => ms <= LIMITS.maxRetryBackoffMs, 'must be at most 10m')
        .optional()
        .describe('Wait before the first retry (default 10s); it doubles for each next one, up to 10m'),
      on: z
        .array(z.enum(RETRY_ON))
        .min(1, 'list at least one of "failed", "timeout"')
        .optional()
        .describe('What ends an attempt that is retried (default both): "failed" (non-zero exit), "timeout"'),
    })
    .transform((r): TaskRetry => ({
      limit: r.limit,
      backoffMs: r.backoff ?? LIMITS.defaultRetryBackoffMs,
      maxBackoffMs: LIMITS.maxRetryBackoffMs,
      on: r.on ? RETRY_ON.filter((c) => r.on?.includes(c)) : [...RETRY_ON],
    }));

  /**
   * `runs_on`: labels the task's runner must carry, each with the same value. Keys and values follow
   * runners' label rules (`src/labels.ts`); YAML booleans and numbers (`gpu: true`) become strings.
   */
  const runsOn = (templated: boolean) =>
    z
      .record(
        z
          .string()
          .regex(
            pattern(LABEL_KEY_RE),
            'label keys are 1-63 letters, digits, "_", ".", "/" or "-", starting with a letter or digit',
          ),
        z
          .union([z.string(), z.number(), z.boolean()])
          .transform((v) => String(v))
          .refine(
            // A matrix task's value may hold `${{ matrix.KEY }}`: each cell's is checked once substituted.
            (v) => LABEL_VALUE_RE.test(v) || (templated && MATRIX_REFERENCE_RE.test(v)),
            'label values are at most 63 letters, digits, "_", ".", "/", ":" or "-"',
          ),
      )
      .refine(
        (labels) => Object.keys(labels).length <= LIMITS.maxRunsOnLabels,
        `at most ${LIMITS.maxRunsOnLabels} labels`,
      );

  /**
   * `matrix`: each key a dimension, each list its values; the task is expanded into one task per
   * cell of their cartesian product (`src/spec/matrix.ts`). Parsed with the values as strings, the
   * way the cells' environment and `${{ matrix.KEY }}` see them.
   */
  const matrix = z
    .record(
      z
        .string()
        .regex(
          pattern(ENV_KEY_RE),
          'matrix keys are letters, digits and "_" (not starting with a digit), like environment names',
        ),
      z
        .array(
          z
            .union([
              z
                .string()
                .max(LIMITS.maxMatrixValueLength, `at most ${LIMITS.maxMatrixValueLength} characters`)
                .refine((v) => !v.includes('\u0000'), 'a matrix value cannot hold a NUL character'),
              z.number(),
              z.boolean(),
            ])
            .transform((v) => String(v)),
        )
        .min(1, 'a matrix key needs at least one value'),
    )
    .superRefine((m, ctx) => {
      const keys = Object.keys(m);
      if (keys.length === 0) ctx.addIssue({ code: 'custom', message: 'a matrix needs at least one key' });
      if (keys.length > LIMITS.maxMatrixKeys)
        ctx.addIssue({ code: 'custom', message: `at most ${LIMITS.maxMatrixKeys} keys` });
      const variables = new Map<string, string>();
      let cells = 1;
      for (const key of keys) {
        const variable = matrixVariable(key);
        const other = variables.get(variable);
        if (other !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `sets ${variable} as key "${other}" does (keys must differ in more than case)`,
          });
        variables.set(variable, key);
        const values = m[key] ?? [];
        values.forEach((value, i) => {
          // 1.10 and 1.1 are one YAML number: a version wants quotes.
          if (values.indexOf(value) !== i)
            ctx.addIssue({ code: 'custom', path: [key, i], message: `duplicate value "${value}"` });
        });
        cells *= values.length;
      }
      if (cells > LIMITS.maxMatrixCells)
        ctx.addIssue({ code: 'custom', message: `${cells} cells; a matrix has at most ${LIMITS.maxMatrixCells}` });
    });

  /**
   * `secret_env`: names of env variables whose values are secrets: masked (`***`, one per byte) in
   * the task's log wherever it is read, on the runner or in the object store.
   */
  const secretEnv = z
    .array(z.string().regex(pattern(ENV_KEY_RE), 'environment variable names are letters, digits and "_"'))
    .max(LIMITS.maxSecretEnv, `at most ${LIMITS.maxSecretEnv} names`);

  /** A path pattern in the task's workspace (`dist/**`, `*.xml`, `node_modules`): relative, never climbing out. */
  const workspaceGlob = z
    .string()
    .min(1, 'must not be empty')
    .max(512, 'at most 512 characters')
    .refine((p) => !p.startsWith('/'), 'must be relative to the workspace')
    .refine((p) => !p.split('/').includes('..'), 'must not climb out of the workspace ("..")')
    .refine((p) => !/[\u0000\\]/.test(p), 'must not hold a NUL or a backslash');

  const globs = z
    .array(workspaceGlob)
    .min(1, 'list at least one path')
    .max(LIMITS.maxPathPatterns, `at most ${LIMITS.maxPathPatterns} paths`);

  /**
   * `cache`: paths restored before the steps when the store has `key` (scoped to the run's group),
   * saved after the steps when they all succeeded and it had not. `{{ hash FILE }}` in the key is
   * the SHA-256 of the files matching FILE in the workspace before the steps.
   */
  const cache = z.strictObject({
    key: z
      .string()
      .min(1, 'must not be empty')
      .max(200, 'at most 200 characters')
      .regex(/^([A-Za-z0-9._-]|\{\{\s*hash\s+[^{}]+\}\})+$/, 'letters, digits, ".", "_", "-" and {{ hash FILE }}'),
    paths: globs,
  });

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

  const steps = z
    .array(step)
    .min(1, 'a task needs at least one step')
    .max(LIMITS.maxStepsPerTask, `at most ${LIMITS.maxStepsPerTask} steps`);

  const image = z.string().min(1).max(512);

  /**
   * The fields a matrix cell's values are substituted into (`${{ matrix.KEY }}`), checked again in
   * each cell once they are: a value may make a working_dir climb out, or a label value invalid.
   */
  const MatrixTemplatedSchema = z.strictObject({
    steps,
    env: env.optional(),
    image: image.optional(),
    working_dir: workingDir.optional(),
    runs_on: runsOn(false).optional(),
  });

  const TaskSpecSchema = z
    .strictObject({
      name,
      steps,
      env: env.optional(),
      secret_env: secretEnv.optional().describe("Env variables (the run's or the task's) whose values its log masks"),
      artifacts: globs.optional().describe('Paths of its workspace kept in the object store once its steps succeeded'),
      artifacts_from: z
        .array(name)
        .max(LIMITS.maxPathPatterns, `at most ${LIMITS.maxPathPatterns} tasks`)
        .optional()
        .describe('Tasks it depends on whose artifacts it gets in its workspace before its first step'),
      cache: cache.optional().describe('Paths restored from and saved to the object store under a key, per group'),
      working_dir: workingDir.optional().describe("Relative to the task's workspace, and inside it"),
      driver: z.enum(DRIVERS).default('process'),
      image: image.optional().describe('Container image, for the docker and kubernetes drivers'),
      pull: z
        .enum(PULL_POLICIES)
        .optional()
        .describe(
          'When the image is pulled (docker and kubernetes drivers): if-not-present (default), always, or never (it must be there)',
        ),
      resources: resources
        .optional()
        .describe("The container's limits (docker and kubernetes drivers); the runner's defaults fill the rest"),
      run_as_root: z
        .boolean()
        .optional()
        .describe('Run as root in the container (docker driver); only runners that allow it take the task'),
      node_selector: nodeSelector
        .optional()
        .describe("Node labels the task's pod needs (kubernetes driver), added to the runner's own"),
      service_account: z
        .string()
        .regex(pattern(K8S_NAME_RE), 'must be a Kubernetes name (lower-case letters, digits and "-")')
        .optional()
        .describe("The pod's service account (kubernetes driver): one the runner allows"),
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
      retry: retry
        .optional()
        .describe('Start the task again when it fails or times out (never when its runner is lost)'),
      runs_on: runsOn(true)
        .optional()
        .describe('Runner labels the task needs: it runs only on a runner of its pool with every one, same value'),
      matrix: matrix
        .optional()
        .describe('Run the task once per combination of these values (`${{ matrix.KEY }}`, $MATRIX_KEY)'),
    })
    .superRefine((task, ctx) => {
      if (task.driver !== 'process' && !task.image) {
        ctx.addIssue({ code: 'custom', path: ['image'], message: `the ${task.driver} driver needs an image` });
      }
      for (const field of ['image', 'resources', 'run_as_root', 'pull'] as const) {
        if (task.driver === 'process' && task[field] !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: `${field} is only for the docker and kubernetes drivers`,
          });
        }
      }
      for (const field of ['node_selector', 'service_account'] as const) {
        if (task.driver !== 'kubernetes' && task[field] !== undefined) {
          ctx.addIssue({ code: 'custom', path: [field], message: `${field} is only for the kubernetes driver` });
        }
      }
      if (task.driver === 'kubernetes') {
        if (task.resources?.pids !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['resources', 'pids'],
            message: "the kubernetes driver cannot set a pod's pids limit (the node's podPidsLimit applies): drop it",
          });
        }
        // The pod's workspace is its own (an emptyDir): nothing of the runner's disk reaches it.
        for (const field of ['artifacts', 'artifacts_from', 'cache'] as const) {
          if (task[field] !== undefined) {
            ctx.addIssue({
              code: 'custom',
              path: [field],
              message: `${field} is not carried to a pod: the kubernetes driver runs the task in a workspace of its own`,
            });
          }
        }
      }
      if (task.fleet && task.pool !== 'default') {
        ctx.addIssue({
          code: 'custom',
          path: ['pool'],
          message: `a fleet task runs in its resource class's pool ("${task.fleet.name}-${task.fleet.class}"): drop pool`,
        });
      }
    });

  const RunSpecSchema = z.strictObject({
    name: z.string().min(1, 'a run needs a name').max(200),
    group: z
      .string()
      .max(256)
      .regex(pattern(GROUP_RE), 'must be a path like /project/42/main (segments of letters, digits, "_", "." or "-")')
      .default('/default'),
    env: env.optional().describe('Environment for every task (a task env overrides it)'),
    secret_env: secretEnv.optional().describe('Env variables whose values every task log masks'),
    tasks: z.array(TaskSpecSchema).max(LIMITS.maxTasks, `a run has at most ${LIMITS.maxTasks} tasks`),
  });

  /** Tuning of one run's scheduling; every field has a default. */
  const RunOptionsSchema = z.strictObject({
    /** How long a reservation waits for a runner of the pool to answer before it is asked again. */
    reservationTimeout: duration.default(60_000),
    /** A reserved slot not used in this time is given back; also how long execution may wait to start. */
    evictionTimeout: duration.default(30_000),
    /** After a task, how long its runner keeps the lease for the run's next task. */
    leaseLinger: duration.default(2_000),
    /** A started task whose runner is silent this long is lost (runners heartbeat every second). */
    heartbeatTimeout: duration.default(10_000),
    /**
     * Once a reservation has waited this long unanswered (the pool's runners are full), ready tasks
     * are queued behind busy leases whose last task was short (docs/run-engine.md).
     */
    queueBehindAfter: duration.default(500),
    /** How many times an idempotent task may be started in all. */
    maxAttempts: z.number().int().min(1).max(10).default(3),
    /**
     * Pins the run to one runner (scheduled runs): every reservation goes to that runner's own
     * reservation queue instead of the pools', so no other runner takes its tasks. Default: none.
     */
    runner: name.optional(),
  });

  /** A succeeded task carried over from the run being restarted. */
  const KeptTaskSchema = z.strictObject({
    runner: z.string().nullable(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    exitCode: z.number().int().nullable(),
    attempts: z.number().int().min(0),
  });

  /** A restart: the run it restarts and the succeeded tasks it keeps (they do not run again). */
  const RestartSchema = z.strictObject({
    of: z.string().min(1).max(1000),
    keep: z.record(z.string(), KeptTaskSchema).default({}),
  });

  /** A run limited by a changegroup: queued until the changegroup admits it. */
  const AdmissionSchema = z.strictObject({ changegroup: z.string().min(1).max(200) });

  /** The run workflow's single argument. */
  const RunInputSchema = z.strictObject({
    spec: z.unknown(),
    options: z.unknown().optional(),
    restart: z.unknown().optional(),
    admission: z.unknown().optional(),
    resume: z.unknown().optional(),
    patchGate: z.unknown().optional(),
  });

  return {
    MatrixTemplatedSchema,
    TaskSpecSchema,
    RunSpecSchema,
    RunOptionsSchema,
    KeptTaskSchema,
    RestartSchema,
    AdmissionSchema,
    RunInputSchema,
  };
}

export type RunSchemas = ReturnType<typeof defineRunSchemas>;

const RUN_SCHEMAS = defineRunSchemas();

/** The run spec's schemas (one set per process, or per workflow worker thread). */
export function runSchemas(): RunSchemas {
  return RUN_SCHEMAS;
}

/** What a run file holds, before defaults. */
export type RunSpecInput = z.input<RunSchemas['RunSpecSchema']>;
/** A run spec as the schema parses it: defaults filled in, matrices not yet expanded. */
export type ParsedRunSpec = z.output<RunSchemas['RunSpecSchema']>;
export type ParsedTaskSpec = z.output<RunSchemas['TaskSpecSchema']>;
/**
 * A validated run spec, with defaults filled in, durations in milliseconds and every matrix task
 * expanded into its cells (`src/spec/matrix.ts`).
 */
export type RunSpec = Omit<ParsedRunSpec, 'tasks'> & { tasks: TaskSpec[] };
/**
 * A task of a validated run spec. A task expanded from a `matrix` is one of its cells: it keeps
 * which task it came from and its values (see `src/spec/matrix.ts`).
 */
export type TaskSpec = Omit<ParsedTaskSpec, 'matrix'> & { matrix?: MatrixCell };

/** Where a matrix cell came from: the task that declared the matrix, and this cell's values. */
export interface MatrixCell {
  /** The matrix task's name as written (`test`); no task of the expanded spec has it. */
  of: string;
  /** This cell's values as strings, in the matrix's key order: `{node: '20', os: 'linux'}`. */
  values: Record<string, string>;
}

export type RunOptions = z.output<RunSchemas['RunOptionsSchema']>;
export type KeptTask = z.output<RunSchemas['KeptTaskSchema']>;
export type Restart = z.output<RunSchemas['RestartSchema']>;
