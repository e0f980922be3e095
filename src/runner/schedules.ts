/**
 * Runner schedules: runs started on a cron schedule and pinned to one runner, kept as Temporal
 * Schedules (`runner/<runner>/<id>`). The server evaluates the cron expression, applies the overlap
 * policy and catch-up window, and shows each schedule in the Web UI and `temporal schedule`; the
 * runner's own registry workflow records nothing for them.
 */
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  type Client,
  type ScheduleDescription,
} from '@temporalio/client';
import { RUN_SA } from '../search-attributes';
import { ConfigSchema } from '../config';
import { scopedValue } from '../codec/payload-converter';
import { RunfleetError } from '../errors';
import { WORKFLOW_TYPES, groupPrefixes, runWorkflowId, runnerScheduleId } from '../ids';
import { RUN_PATCH_GATE } from '../run/patches';
import { checkRunSpec, formatProblems } from '../spec/validate';
import { checkTimezone, parseCron } from './cron';

const SCHEDULE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** A scheduled run missed while the server was down is started late only within this window. */
const CATCHUP_WINDOW_MS = 60_000;
/** How many upcoming fire times `list` shows. */
const NEXT_TIMES = 3;

/** The same keys `RunfleetClient.submitRun` sets, so scheduled runs list and filter like any run. */
const SA = RUN_SA;

export interface RunnerScheduleInput {
  runner: string;
  /** The schedule's own id, unique per runner. */
  id: string;
  /** Five-field cron expression (or a macro like `@daily`). */
  cron: string;
  /** IANA time zone the cron expression is read in. Default UTC. */
  timezone?: string;
  /** Create (or leave) the schedule paused. Default false. */
  paused?: boolean;
  /** The run spec as written in its file (the workflow parses it, as for `run submit`). */
  spec: unknown;
  /** Where the spec came from, shown by `list`. */
  file?: string;
  /** Task queue of the control worker, which runs the run workflows. */
  controlTaskQueue: string;
}

/** What the schedule records about itself, in the memo of the runs it starts. */
interface ScheduleMemo {
  runner: string;
  id: string;
  cron: string;
  timezone: string;
  file: string | null;
}

export interface RunnerScheduleInfo {
  /** `runner/<runner>/<id>`: the Temporal Schedule id. */
  scheduleId: string;
  id: string;
  runner: string;
  cron: string | null;
  timezone: string;
  paused: boolean;
  /** Why it is paused, if Temporal or a person said. */
  note: string | null;
  /** The next fire times (ISO 8601), at most 3; none while paused. */
  nextRunTimes: string[];
  /** The most recent run it started (including a manual trigger), if any. */
  lastAction: { scheduledAt: string; takenAt: string; workflowId: string } | null;
  /** The run name and group of the spec it starts. */
  runName: string | null;
  group: string | null;
  file: string | null;
}

export interface SetResult {
  scheduleId: string;
  created: boolean;
  /** Workflow ids of its runs start with this; Temporal appends the fire time. */
  workflowIdPrefix: string;
}

/** Checks everything a schedule needs before anything is created; returns the parsed spec's name and group. */
export function checkRunnerSchedule(input: RunnerScheduleInput): { name: string; group: string } {
  checkRunnerName(input.runner);
  checkScheduleKey(input.id);
  parseCron(input.cron);
  if (input.timezone !== undefined) checkTimezone(input.timezone);
  const checked = checkRunSpec(input.spec);
  if (!checked.ok) {
    throw new RunfleetError('InvalidRunSpec', formatProblems('invalid run spec', checked.problems), {
      problems: checked.problems,
    });
  }
  return { name: checked.spec.name, group: checked.spec.group };
}

/** Creates the schedule, or updates it when one with this id exists. */
export async function setRunnerSchedule(client: Client, input: RunnerScheduleInput): Promise<SetResult> {
  const { name, group } = checkRunnerSchedule(input);
  const scheduleId = runnerScheduleId(input.runner, input.id);
  const timezone = input.timezone ?? 'UTC';
  const workflowIdPrefix = runWorkflowId(group, `sched-${input.id}`);
  const memo: ScheduleMemo = {
    runner: input.runner,
    id: input.id,
    cron: input.cron.trim(),
    timezone,
    file: input.file ?? null,
  };
  // Encrypted for the runner's own key scope (the control side derives it): the runner lists its
  // schedules at start and runs what they start anyway, and no other runner reads them.
  const scope = `runner/${input.runner}`;
  const options = {
    spec: { cronExpressions: [input.cron.trim()], timezone },
    action: {
      type: 'startWorkflow' as const,
      workflowType: WORKFLOW_TYPES.run,
      taskQueue: input.controlTaskQueue,
      workflowId: workflowIdPrefix,
      // A run pinned to this runner: its reservations go to pinnedTaskQueue(runner, driver).
      // The gate of the code that creates the schedule: a later gate's patches are asked.
      args: [scopedValue(scope, { spec: input.spec, options: { runner: input.runner }, patchGate: RUN_PATCH_GATE })],
      typedSearchAttributes: [
        { key: SA.group, value: group },
        { key: SA.groupPath, value: groupPrefixes(group) },
        { key: SA.runName, value: name },
        { key: SA.phase, value: 'queued' },
        { key: SA.result, value: 'unknown' },
      ],
      // The schedule's own memo cannot be updated; the action's can, so the schedule's
      // description lives here (every run it starts carries it too).
      memo: { name: scopedValue(scope, name), schedule: scopedValue(scope, memo) },
    },
    policies: { overlap: 'SKIP' as const, catchupWindow: CATCHUP_WINDOW_MS },
    state: {
      paused: input.paused === true,
      ...(input.paused ? { note: 'paused by runfleet runner schedule set --paused' } : {}),
    },
  };
  try {
    await client.schedule.create({ scheduleId, ...options });
    return { scheduleId, created: true, workflowIdPrefix };
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  await client.schedule.getHandle(scheduleId).update(() => options);
  return { scheduleId, created: false, workflowIdPrefix };
}

/** Deletes a schedule; false when there was none. Runs it started are not touched. */
export async function removeRunnerSchedule(client: Client, runner: string, id: string): Promise<boolean> {
  checkRunnerName(runner);
  checkScheduleKey(id);
  try {
    await client.schedule.getHandle(runnerScheduleId(runner, id)).delete();
    return true;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}

/**
 * A runner's schedules, by id. Listing is eventually consistent (a schedule created a moment ago
 * may be missing); each found one is then described, which is current.
 */
export async function listRunnerSchedules(client: Client, runner: string): Promise<RunnerScheduleInfo[]> {
  checkRunnerName(runner);
  const prefix = runnerScheduleId(runner, '');
  const ids: string[] = [];
  for await (const summary of client.schedule.list()) {
    if (summary.scheduleId.startsWith(prefix)) ids.push(summary.scheduleId);
  }
  const out: RunnerScheduleInfo[] = [];
  for (const scheduleId of ids.sort()) {
    try {
      out.push(describeRunnerSchedule(runner, scheduleId, await client.schedule.getHandle(scheduleId).describe()));
    } catch (err) {
      // Deleted between the list and the describe.
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  }
  return out;
}

/** Lines for a runner's log at start: each schedule and its next run (`runner describe` shows the same). */
export async function describeRunnerSchedules(client: Client, runner: string): Promise<string[]> {
  const schedules = await listRunnerSchedules(client, runner);
  if (schedules.length === 0) return [`runner ${runner} has no schedules`];
  return schedules.map(
    (s) =>
      `schedule ${s.id}: ${s.cron ?? '?'} (${s.timezone}) run ${s.runName ?? '?'}; ` +
      (s.paused ? `paused${s.note ? `: ${s.note}` : ''}` : `next scheduled runs ${s.nextRunTimes.join(', ') || '-'}`),
  );
}

/** One schedule of a runner, described; null when there is none. */
export async function getRunnerSchedule(
  client: Client,
  runner: string,
  id: string,
): Promise<RunnerScheduleInfo | null> {
  const scheduleId = runnerScheduleId(runner, id);
  try {
    return describeRunnerSchedule(runner, scheduleId, await client.schedule.getHandle(scheduleId).describe());
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return null;
    throw err;
  }
}

function describeRunnerSchedule(runner: string, scheduleId: string, d: ScheduleDescription): RunnerScheduleInfo {
  const actionMemo = (d.action.memo ?? {}) as { name?: unknown; schedule?: Partial<ScheduleMemo> };
  const memo = actionMemo.schedule ?? {};
  const last = d.info.recentActions[d.info.recentActions.length - 1];
  const attrs = d.action.typedSearchAttributes;
  const group = Array.isArray(attrs) ? attrs.find((p) => p.key.name === SA.group.name)?.value : attrs?.get(SA.group);
  return {
    scheduleId,
    id: scheduleId.slice(runnerScheduleId(runner, '').length),
    runner,
    cron: typeof memo.cron === 'string' ? memo.cron : null,
    timezone: d.spec.timezone ?? memo.timezone ?? 'UTC',
    paused: d.state.paused,
    note: d.state.note ? d.state.note : null,
    nextRunTimes: d.state.paused ? [] : d.info.nextActionTimes.slice(0, NEXT_TIMES).map((t) => t.toISOString()),
    lastAction: last
      ? {
          scheduledAt: last.scheduledAt.toISOString(),
          takenAt: last.takenAt.toISOString(),
          workflowId: last.action.workflow.workflowId,
        }
      : null,
    runName: typeof actionMemo.name === 'string' ? actionMemo.name : null,
    group: typeof group === 'string' ? group : null,
    file: typeof memo.file === 'string' ? memo.file : null,
  };
}

function checkRunnerName(runner: string): void {
  const parsed = ConfigSchema.shape.runner.safeParse({ name: runner });
  if (!parsed.success) {
    throw new RunfleetError(
      'InvalidArgument',
      `runner name "${runner}": ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    );
  }
}

function checkScheduleKey(id: string): void {
  if (!SCHEDULE_ID_RE.test(id)) {
    throw new RunfleetError(
      'InvalidArgument',
      `schedule id "${id}" must be 1-63 letters, digits, "_", "." or "-", starting with a letter or digit`,
    );
  }
}
