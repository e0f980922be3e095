/**
 * Activities a runner serves on its own queue: executing a task on a lease it granted, and
 * reading task logs. The task's timeout is the activity's start-to-close timeout, enforced by
 * the server; when it fires, the next heartbeat tells the runner and the process group dies.
 */
import { Context } from '@temporalio/activity';
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { failure } from '../src/errors';
import type { Driver } from '../src/runner/process-driver';
import type { SlotPool } from '../src/runner/slots';
import type { TaskOutcome } from '../src/types';
import type { ExecuteRequest, LogChunk, ReadLogRequest, RunnerActivities } from './types';

export interface RunnerActivityDeps {
  runner: string;
  dataDir: string;
  slots: SlotPool;
  drivers: Record<string, Driver>;
  /** The environment every task starts from (a safe allowlist of the runner's own). */
  baseEnv: Record<string, string>;
  /** How often a running task heartbeats. */
  heartbeatMs?: number;
}

/** Where a task's log lives on its runner. */
export function taskLogPath(dataDir: string, runId: string, task: string): string {
  return join(dataDir, 'logs', runFolder(runId), `${runFolder(task)}.log`);
}

function taskWorkspace(dataDir: string, runId: string, task: string): string {
  return join(dataDir, 'work', runFolder(runId), runFolder(task));
}

/** A run id (or task name) as one folder name. */
export function runFolder(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]+/g, '_');
}

export function createRunnerActivities(deps: RunnerActivityDeps): RunnerActivities {
  const heartbeatMs = deps.heartbeatMs ?? 1_000;
  return {
    async executeTask(req: ExecuteRequest): Promise<TaskOutcome> {
      const ctx = Context.current();
      const { task } = req;
      const driver = deps.drivers[task.driver];
      if (!driver) {
        throw failure('DriverUnavailable', `runner "${deps.runner}" has no "${task.driver}" driver`);
      }
      const key = `${req.runId}/${task.name}`;
      try {
        deps.slots.startRunning(req.leaseId, key);
      } catch (err) {
        // Nothing has started: the run reserves again.
        throw failure('LeaseExpired', (err as Error).message);
      }
      try {
        const startedAt = new Date().toISOString();

        const workspace = taskWorkspace(deps.dataDir, req.runId, task.name);
        const cwd = task.working_dir
          ? isAbsolute(task.working_dir)
            ? task.working_dir
            : join(workspace, task.working_dir)
          : workspace;
        if (task.working_dir && isAbsolute(task.working_dir) && !existsSync(cwd)) {
          throw failure('TaskSpawnFailed', `working_dir "${cwd}" does not exist on runner "${deps.runner}"`);
        }
        const logFile = taskLogPath(deps.dataDir, req.runId, task.name);
        mkdirSync(join(logFile, '..'), { recursive: true });
        const env = {
          ...deps.baseEnv,
          ...req.runEnv,
          ...(task.env ?? {}),
          RUNFLEET_RUN_ID: req.runId,
          RUNFLEET_TASK: task.name,
          RUNFLEET_RUNNER: deps.runner,
          RUNFLEET_ATTEMPT: String(req.attempt),
          RUNFLEET_WORKSPACE: workspace,
        };
        const heartbeat = setInterval(() => ctx.heartbeat(), heartbeatMs);
        ctx.heartbeat();
        try {
          const result = await driver.run({
            steps: task.steps.map((s) => (typeof s === 'string' ? { run: s } : s)),
            cwd,
            env,
            logFile,
            signal: ctx.cancellationSignal,
          });
          if (result.aborted) {
            // Report the cancellation as such: the workflow tells a timeout from a stop.
            await ctx.cancelled;
          }
          return {
            exitCode: result.exitCode,
            failedStep: result.failedStep,
            startedAt,
            finishedAt: new Date().toISOString(),
          };
        } catch (err) {
          if (ctx.cancellationSignal.aborted) throw err;
          if ((err as NodeJS.ErrnoException).code !== undefined) {
            throw failure('TaskSpawnFailed', `could not start task "${task.name}": ${(err as Error).message}`);
          }
          throw err;
        } finally {
          clearInterval(heartbeat);
        }
      } finally {
        deps.slots.finishRunning(req.leaseId);
      }
    },

    async readTaskLog(req: ReadLogRequest): Promise<LogChunk> {
      const file = taskLogPath(deps.dataDir, req.runId, req.task);
      const complete = !deps.slots.isRunning(`${req.runId}/${req.task}`);
      if (!existsSync(file)) return { data: '', nextOffset: req.offset, exists: false, complete };
      const size = statSync(file).size;
      const length = Math.max(0, Math.min(req.limit, size - req.offset));
      const buffer = Buffer.alloc(length);
      const fd = openSync(file, 'r');
      try {
        readSync(fd, buffer, 0, length, req.offset);
      } finally {
        closeSync(fd);
      }
      // Only complete when everything has been read.
      return {
        data: buffer.toString('utf8'),
        nextOffset: req.offset + length,
        exists: true,
        complete: complete && req.offset + length >= size,
      };
    },
  };
}
