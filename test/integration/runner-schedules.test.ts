/** `runfleet runner schedule set|list|rm` against the real dev server's Temporal Schedules. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runnerScheduleId } from '../../src/ids';
import {
  describeRunnerSchedules,
  getRunnerSchedule,
  listRunnerSchedules,
  type RunnerScheduleInfo,
} from '../../src/runner/schedules';
import { inputQuery } from '../../workflows/run-messages';
import { startHarness, type Harness } from '../helpers/harness';
import { runCli, type CliResult } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

let h: Harness;
let dir: string;
const cleanup: string[] = [];

beforeAll(async () => {
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), 'runfleet-sched-'));
});

afterAll(async () => {
  for (const id of cleanup)
    await h.client.schedule
      .getHandle(id)
      .delete()
      .catch(() => undefined);
  await h?.stop();
});

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, h, { RUNFLEET_HOME: dir });
}

async function listed(runner: string, check: (s: RunnerScheduleInfo) => boolean): Promise<RunnerScheduleInfo> {
  // Listing is eventually consistent: poll the CLI until the schedule shows as expected.
  return until(
    `schedule of ${runner} in list`,
    async () => {
      const r = await cli(['runner', 'schedule', 'list', runner, '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const { schedules } = JSON.parse(r.stdout) as { schedules: RunnerScheduleInfo[] };
      return schedules.find(check);
    },
    { timeoutMs: 30_000, everyMs: 250 },
  );
}

describe('runner schedules', () => {
  it('sets, lists, updates, triggers a pinned run, and removes a schedule', async () => {
    const runner = uniqueName('sched');
    const group = `/sched/${uniqueName('g')}`;
    const file = join(dir, 'nightly.yaml');
    writeFileSync(
      file,
      `name: nightly build\ngroup: ${group}\ntasks:\n  - name: build\n    pool: ${h.pool}\n    steps: [echo built]\n`,
    );

    // Hourly, at a minute half an hour away: the schedule cannot fire by itself during the test,
    // so its only action is the trigger below.
    const minute = (new Date().getUTCMinutes() + 30) % 60;
    const hourly = `${minute} * * * *`;
    const t0 = Date.now();
    const set = await cli(['runner', 'schedule', 'set', runner, 'nightly', '--cron', hourly, '--file', file]);
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    expect(set.stdout.trim()).toBe(`schedule ${runnerScheduleId(runner, 'nightly')} created`);
    cleanup.push(runnerScheduleId(runner, 'nightly'));

    const s = await listed(runner, (x) => x.id === 'nightly');
    console.log(`set -> visible in list: ${Date.now() - t0} ms`);
    expect(s).toMatchObject({
      scheduleId: `runner/${runner}/nightly`,
      runner,
      cron: hourly,
      timezone: 'UTC',
      paused: false,
      runName: 'nightly build',
      group,
      file,
      lastAction: null,
    });
    expect(s.nextRunTimes).toHaveLength(3);
    const times = s.nextRunTimes.map((t) => Date.parse(t));
    expect(times[1]! - times[0]!).toBe(3_600_000);
    expect(times[2]! - times[1]!).toBe(3_600_000);
    expect(new Date(times[0]!).getUTCMinutes()).toBe(minute);
    expect(new Date(times[0]!).getUTCSeconds()).toBe(0);

    const text = await cli(['runner', 'schedule', 'list', runner]);
    expect(text.stdout).toContain(`nightly  ${hourly} (UTC)  run nightly build in ${group}`);
    expect(text.stdout).toContain(`  next: ${s.nextRunTimes.join(', ')}`);

    // Update in place: another cron, a time zone, paused.
    const upd = await cli([
      'runner',
      'schedule',
      'set',
      runner,
      'nightly',
      '--cron',
      '30 2 * * MON-FRI',
      '--timezone',
      'Europe/Berlin',
      '--file',
      file,
      '--paused',
    ]);
    expect(upd.code).toBe(0);
    expect(upd.stdout.trim()).toBe(`schedule runner/${runner}/nightly updated`);
    const u = await getRunnerSchedule(h.client, runner, 'nightly');
    expect(u).toMatchObject({ cron: '30 2 * * MON-FRI', timezone: 'Europe/Berlin', paused: true, nextRunTimes: [] });
    const paused = await listed(runner, (x) => x.id === 'nightly' && x.paused);
    expect(paused.cron).toBe('30 2 * * MON-FRI');

    // Back to hourly, running; then fire it now.
    const again = await cli(['runner', 'schedule', 'set', runner, 'nightly', '--cron', hourly, '--file', file]);
    expect(again.code).toBe(0);
    expect((await getRunnerSchedule(h.client, runner, 'nightly'))?.paused).toBe(false);
    await h.client.schedule.getHandle(runnerScheduleId(runner, 'nightly')).trigger();
    const last = await until(
      'the triggered run',
      async () => {
        const info = await getRunnerSchedule(h.client, runner, 'nightly');
        return info?.lastAction ?? undefined;
      },
      { timeoutMs: 30_000, everyMs: 250 },
    );
    expect(last.workflowId.startsWith(`run${group}/sched-nightly-`)).toBe(true);

    const run = h.client.workflow.getHandle(last.workflowId);
    const description = await run.describe();
    expect(description.type).toBe('runWorkflow');
    expect(description.taskQueue).toBe(h.controlQueue);
    expect(await description.memo).toMatchObject({
      name: 'nightly build',
      schedule: { runner, id: 'nightly', cron: hourly, timezone: 'UTC' },
    });
    expect(description.searchAttributes['RunfleetGroup']).toEqual([group]);
    expect(description.searchAttributes['RunfleetRunName']).toEqual(['nightly build']);
    // The run is pinned to the runner (no such runner serves here: it stays queued).
    const input = await until('the run input', () => run.query(inputQuery), { timeoutMs: 30_000, everyMs: 250 });
    expect(input.options).toEqual({ runner });
    expect((input.spec as { name: string }).name).toBe('nightly build');
    await run.terminate('test done');

    expect((await listRunnerSchedules(h.client, runner)).map((x) => x.id)).toContain('nightly');
    const lines = await describeRunnerSchedules(h.client, runner);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^schedule nightly: ${minute} \\* \\* \\* \\* \\(UTC\\) run nightly build; next scheduled runs \\d{4}-`,
      ),
    );

    const rm = await cli(['runner', 'schedule', 'rm', runner, 'nightly']);
    expect(rm.code).toBe(0);
    expect(rm.stdout.trim()).toBe(`schedule runner/${runner}/nightly removed`);
    expect(await getRunnerSchedule(h.client, runner, 'nightly')).toBeNull();
    const rmAgain = await cli(['runner', 'schedule', 'rm', runner, 'nightly']);
    expect(rmAgain.code).toBe(2);
    expect(rmAgain.stderr).toContain(`runner ${runner} has no schedule nightly`);
  });

  it('creates nothing when the cron, the time zone or the run file is invalid', async () => {
    const runner = uniqueName('bad');
    const good = join(dir, 'good.yaml');
    writeFileSync(good, `name: ok\ntasks:\n  - name: t\n    pool: ${h.pool}\n    steps: ['true']\n`);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, `name: broken\ntasks:\n  - name: t\n    steps: ['true']\n    depends: [nope]\n`);

    const cron = await cli(['runner', 'schedule', 'set', runner, 'x', '--cron', '61 * * * *', '--file', good]);
    expect(cron.code).toBe(2);
    expect(cron.stderr.trim()).toBe("runfleet: cron: minute field '61' is out of range 0-59");

    const fields = await cli(['runner', 'schedule', 'set', runner, 'x', '--cron', '* * *', '--file', good]);
    expect(fields.code).toBe(2);
    expect(fields.stderr).toContain("cron: '* * *' has 3 fields; expected 5");

    const tz = await cli([
      'runner',
      'schedule',
      'set',
      runner,
      'x',
      '--cron',
      '0 * * * *',
      '--timezone',
      'Mars/Olympus',
      '--file',
      good,
    ]);
    expect(tz.code).toBe(2);
    expect(tz.stderr).toContain("timezone 'Mars/Olympus' is not an IANA time zone name");

    const spec = await cli(['runner', 'schedule', 'set', runner, 'x', '--cron', '0 * * * *', '--file', bad]);
    expect(spec.code).toBe(2);
    expect(spec.stderr).toContain(`invalid run file ${bad}`);
    expect(spec.stderr).toContain('nope');

    const id = await cli(['runner', 'schedule', 'set', runner, 'no/slash', '--cron', '0 * * * *', '--file', good]);
    expect(id.code).toBe(2);
    expect(id.stderr).toContain('schedule id "no/slash" must be');

    expect(await getRunnerSchedule(h.client, runner, 'x')).toBeNull();
    const list = await cli(['runner', 'schedule', 'list', runner]);
    expect(list.code).toBe(0);
    expect(list.stdout.trim()).toBe(`runner ${runner} has no schedules`);
  });
});
