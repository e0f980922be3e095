/**
 * Activities a runner serves on its own queue: executing a task on a lease it granted, telling
 * a run what it knows of an execution the run lost track of, and reading task logs. The task's
 * timeout is the activity's start-to-close timeout, enforced by the server; when it fires, the
 * next heartbeat tells the runner and the process group dies.
 */
import { CompleteAsyncError, Context } from '@temporalio/activity';
import {
  appendFileSync,
  closeSync,
  constants,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { wholeUtf8Length } from '../src/bytes';
import { RunfleetError } from '../src/errors';
import { asFailure, failure } from '../src/failures';
import { taskFields } from '../src/logging';
import { QUEUE_MARGIN_MS } from '../src/run/queued';
import type { Driver, DriverHandle, SessionRecord, TaskLabels } from '../src/runner/driver';
import { RefusedExecution, type ExecutionLookup } from '../src/runner/sessions';
import type { SlotPool } from '../src/runner/slots';
import type { RunnerSigner } from '../src/security/runner-signer';
import { LogShipper, readFrom } from '../src/runner/log-shipper';
import { longestPattern, maskSecrets, maskableLength, secretPatterns } from '../src/runner/mask';
import type { ObjectStore } from '../src/store/object-store';
import { taskLogPrefix } from '../src/store/task-logs';
import { OUTPUT_FILE, OUTPUT_LIMITS, needsEnv, parseOutputs } from '../src/run/outputs';
import { pack, restore, upload, type Packed, type Restored, type TransferContext } from '../src/runner/transfers';
import { crashPoint } from '../src/runner/crash-points';
import { resolveWorkingDir } from '../src/runner/workspace';
import type { DriverName, TaskOutcome } from '../src/types';
import type {
  ExecuteRequest,
  ExecutionResult,
  LogChunk,
  LookupTaskRequest,
  ReadLogRequest,
  RunnerActivities,
  TaskLookup,
} from './types';

export interface RunnerActivityDeps {
  runner: string;
  pool: string;
  dataDir: string;
  slots: SlotPool;
  drivers: Partial<Record<DriverName, Driver>>;
  /** Records of tasks started here, so a restarted runner finds them (see `src/runner/sessions.ts`). */
  sessions: TaskSessions;
  /** This runner process (a new id every start). */
  bootId: string;
  /** The environment every task starts from (a safe allowlist of the runner's own). */
  baseEnv: Record<string, string>;
  /**
   * A task whose execution the server gave up on (the runner was cut off long enough to be
   * called lost, or its worker is stopping) but which still runs here: the runner reports its
   * outcome to the run when it ends, then calls `done`. No activity carries the task's timeout
   * or a stop of its run to it any more: `kill` stops it (see `src/runner/unattended.ts`).
   */
  detach(record: SessionRecord, outcome: Promise<TaskOutcome>, done: () => void, kill: () => void): void;
  /**
   * How often a running task heartbeats. Default: a third of the execution's heartbeat timeout
   * (at least `MIN_HEARTBEAT_MS`), so a runner is called lost only after three missed beats,
   * and the server pays for no more heartbeats than that.
   */
  heartbeatMs?: number;
  /**
   * Reads a run's env when the run sent it by reference (`runEnvRef`: a large env, read once
   * per run with the run's `runEnv` query). Without it such a task fails before it starts.
   */
  fetchRunEnv?: (runId: string) => Promise<Record<string, string>>;
  /**
   * Signs execution results and lookup answers with the runner's identity signing key; runs
   * refuse unsigned ones unless the control workers run without enforcement. Default: unsigned.
   */
  signer?: RunnerSigner;
  /**
   * The object store: task logs are shipped to it while tasks run (`src/runner/log-shipper.ts`),
   * artifacts and caches kept in it (`src/runner/transfers.ts`), so they outlive this runner.
   * Default: none (logs stay here only; a task that keeps or gets artifacts or a cache is refused).
   */
  objectStore?: { store: ObjectStore; intervalMs: number; log: (line: string) => void };
}

/** What the runner activities need of the session records (`src/runner/sessions.ts`). */
export interface TaskSessions {
  dirFor(labels: TaskLabels): string;
  /** Records an execution before it starts; throws `RefusedExecution` for one declared never received. */
  begin(record: SessionRecord): void;
  setHandle(labels: TaskLabels, handle: DriverHandle): void;
  /** The execution ended (its outcome, or null when killed): its record goes, a `done` marker stays. */
  close(labels: TaskLabels, outcome: TaskOutcome | null): void;
  lookup(labels: Pick<TaskLabels, 'run' | 'task' | 'attempt'>): ExecutionLookup;
  refuse(labels: Pick<TaskLabels, 'run' | 'task' | 'attempt'>): void;
}

/**
 * Where a task attempt's log lives on its runner: `<task>.log` for the first, `<task>.log.<n>` for
 * attempt n (a retry, or an idempotent task started again), each its own.
 */
export function taskLogPath(dataDir: string, runId: string, task: string, attempt = 1): string {
  return join(dataDir, 'logs', runFolder(runId), `${runFolder(task)}.log${attempt > 1 ? `.${attempt}` : ''}`);
}

export function taskWorkspace(dataDir: string, runId: string, task: string): string {
  return join(dataDir, 'work', runFolder(runId), runFolder(task));
}

/** A run id (or task name) as one folder name. */
export function runFolder(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]+/g, '_');
}

/** Heartbeats of a running task are at least this far apart (the worker's throttle is 1 s too). */
const MIN_HEARTBEAT_MS = 1_000;
/** The longest delay a Node timer takes (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Run envs sent by reference kept in memory (the runs this runner is busy with). */
const RUN_ENV_CACHE = 8;
/** Task attempts whose secrets are kept in memory to mask their logs when read from here. */
const MASKED_TASKS = 1_000;
/** One task attempt's key in this runner's maps (task names have no "/"). */
function attemptKey(runId: string, task: string, attempt: number): string {
  return `${runId}/${task}/${attempt}`;
}

/** Beside a log that masks secrets (`<log>.masked`): shown only by a process that knows them. */
const MASKED_MARK = '.masked';

/**
 * Whether a task's log masks secrets (`secret_env`): their values are never written to disk, so
 * a later runner process cannot mask it (it neither shows nor ships it as it is).
 */
export function logMasksSecrets(logFile: string): boolean {
  return existsSync(`${logFile}${MASKED_MARK}`);
}

export function createRunnerActivities(deps: RunnerActivityDeps): RunnerActivities {
  /** Heartbeats now, for each execution running here (`pokeTask`). */
  const running = new Map<string, () => void>();
  const runEnvs = new Map<string, Promise<Record<string, string>>>();
  /** The secret values of recent task attempts (`run/task/attempt`), to mask their logs on reads. */
  const secretsOf = new Map<string, Buffer[]>();
  /** The run env of a request: inline, or read from the run once and kept for its later tasks. */
  const runEnvOf = async (req: ExecuteRequest): Promise<Record<string, string>> => {
    if (!req.runEnvRef) return req.runEnv ?? {};
    if (!deps.fetchRunEnv)
      throw failure('TaskSpawnFailed', `runner "${deps.runner}" cannot read a run env sent by reference`);
    let env = runEnvs.get(req.runId);
    if (!env) {
      env = deps.fetchRunEnv(req.runId);
      runEnvs.set(req.runId, env);
      env.catch(() => runEnvs.delete(req.runId));
      // A few runs' envs at most: each may be 1.5 MiB.
      if (runEnvs.size > RUN_ENV_CACHE) runEnvs.delete(runEnvs.keys().next().value as string);
    }
    try {
      return await env;
    } catch (err) {
      throw failure(
        'TaskSpawnFailed',
        `runner "${deps.runner}" could not read the run's env: ${(err as Error).message}`,
      );
    }
  };

  /** What this runner's records say of an execution (see `lookupTask`). */
  const answerLookup = (req: LookupTaskRequest): TaskLookup => {
    const ref = { run: req.runId, task: req.task, attempt: req.attempt };
    const found = deps.sessions.lookup(ref);
    switch (found.state) {
      case 'recorded':
        return { known: true, outcome: null };
      case 'ended':
        return { known: true, outcome: found.outcome };
      case 'refused':
        return { known: false };
      case 'unknown':
        deps.sessions.refuse(ref);
        return { known: false };
    }
  };

  /**
   * A task queued behind its lease's running one waits for it here, heartbeating, for `waitMs` at
   * most. Nothing of it has started or been recorded: a stop ends the wait as cancelled, and a
   * wait that runs out, or any other cancel (the worker stopping), as `LeaseExpired` (the run
   * reserves again).
   */
  const waitBehind = async (
    req: ExecuteRequest,
    ctx: Context,
    waitMs: number,
    heartbeatMs: number,
    executionKey: string,
  ): Promise<void> => {
    const give = new AbortController();
    const expire = setTimeout(() => give.abort(), Math.max(0, Math.min(waitMs, MAX_TIMER_MS)));
    const heartbeat = setInterval(() => ctx.heartbeat(), heartbeatMs);
    const onCancel = () => give.abort();
    ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });
    running.set(executionKey, () => ctx.heartbeat());
    try {
      await deps.slots.waitForLease(req.leaseId, `${req.runId}/${req.behind}`, give.signal);
    } catch (err) {
      if (ctx.cancellationDetails?.cancelRequested) await ctx.cancelled;
      const why = err instanceof RunfleetError ? err.message : `it did not end within ${waitMs} ms`;
      throw failure('LeaseExpired', `task "${req.task.name}" was queued behind ${req.behind ?? '?'}: ${why}`);
    } finally {
      clearTimeout(expire);
      clearInterval(heartbeat);
      running.delete(executionKey);
      ctx.cancellationSignal.removeEventListener('abort', onCancel);
    }
  };

  return {
    async executeTask(req: ExecuteRequest): Promise<ExecutionResult> {
      const ctx = Context.current();
      const { task } = req;
      const driver = deps.drivers[task.driver];
      // Refused before it starts: the run does not use this lease again, so its slot is free now.
      if (!driver) {
        deps.slots.release(req.leaseId);
        throw failure('DriverUnavailable', `runner "${deps.runner}" has no "${task.driver}" driver`);
      }
      const key = `${req.runId}/${task.name}`;
      const transfers =
        task.artifacts !== undefined || (task.artifacts_from ?? []).length > 0 || task.cache !== undefined;
      if (transfers && !deps.objectStore) {
        deps.slots.release(req.leaseId);
        throw failure(
          'TaskRefused',
          `task "${task.name}" keeps or gets artifacts or a cache, and runner "${deps.runner}" has no object store (store.bucket)`,
        );
      }
      // The task's own timeout: the start-to-close, or less when it also covers a queued wait.
      const startToCloseMs = ctx.info.startToCloseTimeoutMs;
      const timeoutMs =
        Number.isSafeInteger(req.timeoutMs) && (req.timeoutMs as number) > 0
          ? Math.min(req.timeoutMs as number, startToCloseMs)
          : startToCloseMs;
      const heartbeatMs =
        deps.heartbeatMs ?? Math.max(MIN_HEARTBEAT_MS, Math.floor((ctx.info.heartbeatTimeoutMs ?? 30_000) / 3));
      const executionKey = attemptKey(req.runId, task.name, req.attempt);
      if (req.queued === true && typeof req.behind === 'string') {
        await waitBehind(req, ctx, startToCloseMs - timeoutMs - QUEUE_MARGIN_MS, heartbeatMs, executionKey);
      }
      try {
        deps.slots.startRunning(req.leaseId, key, executionKey);
      } catch (err) {
        // Nothing has started: the run reserves again.
        throw failure('LeaseExpired', (err as Error).message);
      }
      let detached = false;
      /** The task's outcome went back to the run: the only case in which the run may use the lease again. */
      let completed = false;
      try {
        const startedMs = Date.now();
        const startedAt = new Date(startedMs).toISOString();
        // The task's own timeout, measured here too: a server timeout before it is a lost runner.
        const deadline = startedMs + timeoutMs;

        const workspace = taskWorkspace(deps.dataDir, req.runId, task.name);
        // Checked again here, symlinks resolved: a run started around the client skips its check.
        let cwd: string;
        try {
          cwd = resolveWorkingDir(workspace, task.working_dir);
        } catch (err) {
          throw asFailure(err);
        }
        const logFile = taskLogPath(deps.dataDir, req.runId, task.name, req.attempt);
        // What an earlier attempt wrote there is not this one's. Never recursive: as root, in a
        // tree a task may still change; a folder there only means no outputs (taskOutputs).
        const outputFile = join(workspace, OUTPUT_FILE);
        try {
          rmSync(outputFile, { force: true });
        } catch {
          // a folder: left as it is
        }
        mkdirSync(join(logFile, '..'), { recursive: true });
        const env: Record<string, string> = {
          ...deps.baseEnv,
          ...(await runEnvOf(req)),
          ...(task.env ?? {}),
          ...needsEnv(req.needs ?? {}),
          RUNFLEET_OUTPUT: outputFile,
          RUNFLEET_RUN_ID: req.runId,
          RUNFLEET_TASK: task.name,
          RUNFLEET_RUNNER: deps.runner,
          RUNFLEET_ATTEMPT: String(req.attempt),
          RUNFLEET_WORKSPACE: workspace,
        };
        let secrets: Buffer[];
        try {
          secrets = secretPatterns(
            [...new Set([...(req.runSecretEnv ?? []), ...(task.secret_env ?? [])])].flatMap((name) => {
              const value = env[name];
              return value === undefined ? [] : [value];
            }),
          );
        } catch (err) {
          throw asFailure(err);
        }
        if (secrets.length > 0) {
          secretsOf.set(attemptKey(req.runId, task.name, req.attempt), secrets);
          if (secretsOf.size > MASKED_TASKS) secretsOf.delete(secretsOf.keys().next().value as string);
          // Beside the log, for a later process of this runner: this log is not to be shown as it is.
          writeFileSync(`${logFile}${MASKED_MARK}`, '', { mode: 0o600 });
        }
        const labels: TaskLabels = {
          run: req.runId,
          task: task.name,
          attempt: req.attempt,
          runner: deps.runner,
          pool: deps.pool,
        };
        const record: SessionRecord = {
          labels,
          driver: task.driver,
          handle: null,
          sessionDir: deps.sessions.dirFor(labels),
          logFile,
          startedAt,
          // Kept with the record: a runner that re-attaches to the task enforces it (no activity does then).
          deadline: new Date(deadline).toISOString(),
          bootId: deps.bootId,
        };
        // Recorded before anything starts: a runner killed from here on finds the task again. Refused
        // when this runner told the run it never received this attempt (the run has moved on).
        try {
          deps.sessions.begin(record);
        } catch (err) {
          if (err instanceof RefusedExecution) throw failure('LeaseExpired', err.message);
          throw err;
        }
        crashPoint('recorded');

        // The task is killed only when the run stops it or its own timeout passes. A cancel for
        // any other reason (the server lost us, the worker is stopping) leaves it running.
        const kill = new AbortController();
        const onCancel = () => {
          // The server says "not found" once the task's start-to-close timeout fired: past our own
          // deadline any cancel is that timeout.
          const reason = (ctx.cancellationSignal.reason as Error | undefined)?.message;
          if (ctx.cancellationDetails?.cancelRequested || reason === 'CANCELLED' || Date.now() >= deadline - 1_000)
            kill.abort();
        };
        ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });

        const transfer: TransferContext | null =
          transfers && deps.objectStore
            ? {
                store: deps.objectStore.store,
                tmpDir: join(deps.dataDir, 'transfers'),
                runId: req.runId,
                task: task.name,
                workspace,
                note: (line) => appendFileSync(logFile, `${line}\n`),
              }
            : null;
        let restored: Restored = { cache: null };
        let packed: Packed[] = [];
        const shipper = deps.objectStore
          ? new LogShipper({
              store: deps.objectStore.store,
              prefix: taskLogPrefix(req.runId, task.name, req.attempt),
              file: logFile,
              secrets,
              intervalMs: deps.objectStore.intervalMs,
              what: `${req.runId} ${task.name} attempt ${req.attempt}`,
              log: deps.objectStore.log,
            })
          : null;
        shipper?.start();

        // None at start: the server knows the execution started; a stop arrives through
        // `pokeTask` (a heartbeat at once), so the beats are for liveness only.
        const heartbeat = setInterval(() => ctx.heartbeat(), heartbeatMs);
        running.set(executionKey, () => ctx.heartbeat());
        // The task's own timeout, kept here too: the server's timeout reaches us with a heartbeat.
        const timeout = setTimeout(() => kill.abort(), Math.min(MAX_TIMER_MS, Math.max(0, deadline - Date.now())));
        // Through the activity's logger (the SDK adds the activity's ids): with the task's fields.
        ctx.log.info(`task ${task.name} started`, { ...taskFields(labels), driver: task.driver });
        const outcome = driver
          .run({
            steps: task.steps.map((s) => (typeof s === 'string' ? { run: s } : s)),
            cwd,
            workspace,
            env,
            logFile,
            sessionDir: record.sessionDir,
            labels,
            ...(task.image ? { image: task.image } : {}),
            ...(task.pull ? { pull: task.pull } : {}),
            ...(task.resources ? { resources: task.resources } : {}),
            ...(task.run_as_root ? { runAsRoot: true } : {}),
            ...(task.node_selector ? { nodeSelector: task.node_selector } : {}),
            ...(task.service_account ? { serviceAccount: task.service_account } : {}),
            deadline,
            signal: kill.signal,
            onStarted: (handle: DriverHandle) => {
              if (!driver.findsTasksWithoutHandle) deps.sessions.setHandle(labels, handle);
              crashPoint('started');
            },
            ...(transfer
              ? {
                  prepare: async (user) => {
                    restored = await restore(transfer, {
                      from: task.artifacts_from ?? [],
                      ...(task.cache ? { cache: task.cache } : {}),
                      user,
                    });
                  },
                  collect: async (user, result) => {
                    if (result.aborted || result.exitCode !== 0) return;
                    // A cache is saved when its key was missed before the steps.
                    const missed = restored.cache && !restored.cache.hit ? restored.cache.key : null;
                    packed = await pack(transfer, {
                      ...(task.artifacts ? { artifacts: task.artifacts } : {}),
                      ...(missed && task.cache ? { cache: { key: missed, paths: task.cache.paths } } : {}),
                      user,
                    });
                  },
                }
              : {}),
          })
          .then(async (result) => {
            crashPoint('ended');
            const outputs = result.aborted ? {} : taskOutputs(outputFile, logFile);
            if (transfer && packed.length > 0) await upload(transfer, packed);
            return {
              result,
              outcome: {
                exitCode: result.exitCode,
                failedStep: result.failedStep,
                startedAt,
                finishedAt: new Date().toISOString(),
                ...(Object.keys(outputs).length > 0 ? { outputs } : {}),
              } satisfies TaskOutcome,
            };
          });
        // However the task ends (here, or unattended after the server gave up on it), the rest of
        // its log goes to the store; the outcome does not wait for the upload.
        if (shipper)
          void outcome.then(
            () => shipper.finish(),
            () => shipper.finish(),
          );
        try {
          const ended = await Promise.race([outcome, ctx.cancelled]);
          deps.sessions.close(labels, ended.result.aborted ? null : ended.outcome);
          crashPoint('closed');
          ctx.log.info(`task ${task.name} ended`, {
            ...taskFields(labels),
            exitCode: ended.outcome.exitCode,
            ...(ended.outcome.failedStep !== undefined ? { failedStep: ended.outcome.failedStep } : {}),
            killed: ended.result.aborted,
          });
          if (ended.result.aborted) await ctx.cancelled;
          completed = true;
          if (!deps.signer) return ended.outcome;
          const statement = {
            run: req.runId,
            task: task.name,
            attempt: req.attempt,
            runner: deps.runner,
            lease: req.leaseId,
          };
          const proof = deps.signer.sign({ about: 'execution', ...statement, outcome: ended.outcome });
          // What the proof covers besides the outcome, and with which key: the run's worker
          // verifies it natively before the run sees it (src/codec/proof-check.ts).
          return {
            ...ended.outcome,
            proof,
            said: { about: 'execution', ...statement, signer: deps.signer.publicKey },
          };
        } catch (err) {
          if (ctx.cancellationSignal.aborted && !kill.signal.aborted) {
            // Still running here, and nobody waits for it on the server: report it when it ends.
            detached = true;
            deps.detach(
              record,
              outcome.then((o) => o.outcome),
              () => deps.slots.finishRunning(req.leaseId),
              () => kill.abort(),
            );
            // Complete nothing: a failure sent now would reach a server that comes back before the
            // heartbeat timeout (the SDK turns a cancel at worker shutdown into "Worker is shutting
            // down and this activity did not complete in time"), and the run would take it for the
            // task's outcome. Left open, the execution times out by heartbeat, the run marks the
            // task lost, and the report of its true outcome settles it.
            throw new CompleteAsyncError();
          }
          if (ctx.cancellationSignal.aborted) {
            // Killed (stop or timeout): wait for the process group to be gone.
            await outcome.catch(() => undefined);
            deps.sessions.close(labels, null);
            throw err;
          }
          deps.sessions.close(labels, null);
          // The driver's refusals (root not allowed, limits above the runner's) keep their code.
          if (err instanceof RunfleetError) throw failure(err.code, `task "${task.name}": ${err.message}`);
          if ((err as NodeJS.ErrnoException).code !== undefined) {
            throw failure('TaskSpawnFailed', `could not start task "${task.name}": ${(err as Error).message}`);
          }
          throw err;
        } finally {
          clearInterval(heartbeat);
          clearTimeout(timeout);
          running.delete(executionKey);
          ctx.cancellationSignal.removeEventListener('abort', onCancel);
        }
      } finally {
        if (!detached) {
          deps.slots.finishRunning(req.leaseId);
          // The run uses a lease again only after an outcome, and not at all when it said it has no
          // task left to send (`releaseLease`): then the slot is free now, not after the linger.
          if (!completed || req.releaseLease) deps.slots.release(req.leaseId);
        }
      }
    },

    async pokeTask(req: LookupTaskRequest): Promise<boolean> {
      const beat = running.get(attemptKey(req.runId, req.task, req.attempt));
      beat?.();
      return beat !== undefined;
    },

    /**
     * A run lost track of an execution (its heartbeat timed out) and asks what this runner knows.
     * Recorded: it runs or is being reported, the report settles it. Ended: its outcome (the
     * completion may not have reached the server). Never received: the server handed it out but
     * the poll response never arrived; the runner refuses it from now on, so the run may start it
     * elsewhere without ever running it twice.
     */
    async lookupTask(req: LookupTaskRequest): Promise<TaskLookup> {
      const answer = answerLookup(req);
      if (!deps.signer) return answer;
      const proof = deps.signer.sign({
        about: 'lookup',
        run: req.runId,
        task: req.task,
        attempt: req.attempt,
        runner: deps.runner,
        known: answer.known,
        outcome: answer.known ? answer.outcome : null,
      });
      return { ...answer, proof };
    },

    async readTaskLog(req: ReadLogRequest): Promise<LogChunk> {
      const attempt = req.attempt ?? 1;
      const file = taskLogPath(deps.dataDir, req.runId, req.task, attempt);
      const complete = !deps.slots.isRunning(`${req.runId}/${req.task}`);
      if (!existsSync(file)) return { data: '', nextOffset: req.offset, exists: false, complete, source: 'runner' };
      const known = secretsOf.get(attemptKey(req.runId, req.task, attempt));
      if (!known && logMasksSecrets(file)) {
        throw failure(
          'InvalidState',
          `the log of ${req.task} attempt ${attempt} masks secrets this runner process no longer knows (it restarted since): read it from the object store`,
        );
      }
      const secrets = known ?? [];
      const size = statSync(file).size;
      // Masked with what lies around the window: a secret across either edge is masked whole,
      // whatever offset and limit a reader asks for.
      const pad = Math.max(0, longestPattern(secrets) - 1);
      const from = Math.max(0, req.offset - pad);
      const raw = readFrom(file, from, req.offset - from + req.limit + pad);
      const head = Math.min(raw.length, req.offset - from);
      let length = Math.max(0, Math.min(req.limit, raw.length - head));
      // At the end of a log still being written, a secret may be half there: it waits.
      if (!complete && from + raw.length >= size)
        length = Math.min(length, maskableLength(raw.subarray(head), secrets, false));
      // Never half a character: the rest of it comes with the next read.
      if (req.offset + length < size) length = wholeUtf8Length(raw.subarray(head, head + length));
      const data = maskSecrets(Buffer.from(raw), secrets).subarray(head, head + length);
      // Only complete when everything has been read.
      return {
        data: data.toString('utf8'),
        nextOffset: req.offset + length,
        exists: true,
        complete: complete && req.offset + length >= size,
        source: 'runner',
      };
    },
  };
}

/**
 * The outputs a task wrote to its output file. The file is the task's (its user's, in its
 * workspace) and read by the runner: never through a link (a task could point it at the runner's
 * secrets), a regular file of one name only, bounded before it is read. A file that breaks the
 * rules gives no outputs, and the task's log says why.
 */
export function taskOutputs(file: string, logFile: string): Record<string, string> {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return {};
    return refuseOutputs(logFile, code === 'ELOOP' ? 'it is a symbolic link' : `it cannot be read (${String(code)})`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return refuseOutputs(logFile, 'it is not a regular file');
    if (stat.nlink !== 1) return refuseOutputs(logFile, 'it has other names (a hard link)');
    if (stat.size > OUTPUT_LIMITS.maxFileBytes)
      return refuseOutputs(logFile, `it holds ${stat.size} bytes; at most ${OUTPUT_LIMITS.maxFileBytes} are read`);
    const buffer = Buffer.alloc(stat.size);
    const read = readSync(fd, buffer, 0, stat.size, 0);
    const parsed = parseOutputs(buffer.subarray(0, read).toString('utf8'));
    return 'problem' in parsed ? refuseOutputs(logFile, parsed.problem) : parsed.outputs;
  } finally {
    closeSync(fd);
  }
}

function refuseOutputs(logFile: string, why: string): Record<string, string> {
  try {
    appendFileSync(logFile, `==> outputs ignored ($RUNFLEET_OUTPUT): ${why}\n`);
  } catch {
    // The log is gone (retention): the outcome still stands.
  }
  return {};
}
