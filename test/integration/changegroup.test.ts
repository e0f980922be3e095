/**
 * Changegroups against the real dev server: a limit of active runs that holds under submitters
 * in separate processes, FIFO admission, and update tokens (one winner per token).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunfleetClient, type SubmittedRun } from '../../src/client/client';
import { RunfleetError } from '../../src/errors';
import { changegroupWorkflowId } from '../../src/ids';
import type { ChangegroupInput } from '../../workflows/changegroup';
import type { RunState } from '../../src/types';
import { startHarness, type Harness } from '../helpers/harness';
import { runCli, type CliResult } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { untilRead } from '../helpers/until';

let h: Harness;
let rf: RunfleetClient;
let group: string;
beforeAll(async () => {
  // 4 slots: more than any limit below, so the changegroup, not the runner, is what holds runs back.
  h = await startHarness({ runners: [{ name: uniqueName('cg-runner'), slots: 4 }] });
  rf = RunfleetClient.fromClient(h.client, { controlTaskQueue: h.controlQueue, address: h.address });
  group = `/cg/${uniqueName('g')}`;
});
afterAll(async () => {
  await h?.stop();
});

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, h);
}

function spec(name: string, steps: string[] = ['true']) {
  return { name, group, tasks: [{ name: 'work', pool: h.pool, steps }] };
}

function runFile(name: string, body: unknown): string {
  const file = join(h.dataDir, `${name}.json`);
  writeFileSync(file, JSON.stringify(body));
  return file;
}

async function expectConflict(p: Promise<unknown>): Promise<RunfleetError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RunfleetError);
  expect((err as RunfleetError).code).toBe('Conflict');
  return err as RunfleetError;
}

async function expectNoRun(workflowId: string): Promise<void> {
  await expect(rf.getRun(workflowId)).rejects.toMatchObject({ code: 'NotFound' });
}

/** The most intervals open at one moment (an end at t comes before a start at t). */
function maxOverlap(intervals: [number, number][]): number {
  const points = intervals.flatMap(([s, e]) => [
    [s, 1],
    [e, -1],
  ]);
  points.sort((a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number));
  let open = 0;
  let max = 0;
  for (const [, d] of points) {
    open += d as number;
    max = Math.max(max, open);
  }
  return max;
}

/** Server time (ms) the run's history recorded the changegroup's `admit` signal. */
async function admittedAt(workflowId: string): Promise<number> {
  const history = await h.client.workflow.getHandle(workflowId).fetchHistory();
  const event = (history.events ?? []).find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'admit');
  if (!event?.eventTime) throw new Error(`run ${workflowId} was never admitted`);
  return Number(event.eventTime.seconds) * 1000 + Math.floor((event.eventTime.nanos ?? 0) / 1e6);
}

/** What the last wait below read: a timeout's error shows it. */
const WAIT = { timeoutMs: 30_000 };

describe('changegroups', () => {
  it('20 submitters in separate processes, limit 2: never more than 2 active, all finish, admitted in submission order', async () => {
    const changegroup = uniqueName('cg-limit');
    const file = runFile('limit', spec('limited', ['sleep 0.5']));
    const procs = await Promise.all(
      Array.from({ length: 20 }, () =>
        cli(['run', 'submit', file, '--changegroup', changegroup, '--limit', '2', '--json']),
      ),
    );
    for (const p of procs) expect(p.code, p.stderr).toBe(0);
    const submitted = procs.map((p) => JSON.parse(p.stdout) as SubmittedRun);
    const bySeq = [...submitted].sort((a, b) => (a.changegroup?.seq ?? 0) - (b.changegroup?.seq ?? 0));
    expect(bySeq.map((s) => s.changegroup?.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    // 20 submissions, at most 2 admitted at once: the others were queued when they came.
    expect(submitted.filter((s) => s.changegroup?.admitted).length).toBeLessThanOrEqual(2);

    const finals: RunState[] = await Promise.all(bySeq.map((s) => rf.waitRun(s.workflowId)));
    for (const f of finals) expect(f.result).toBe('success');

    // Proof of the limit from the runner's own records: the tasks' start and end times.
    const intervals = finals.map((f): [number, number] => {
      const t = f.tasks['work'];
      return [Date.parse(t?.startedAt ?? ''), Date.parse(t?.finishedAt ?? '')];
    });
    for (const [s, e] of intervals) expect(e).toBeGreaterThanOrEqual(s);
    expect(maxOverlap(intervals)).toBe(2);

    // Admitted in submission order: each run's `admit` is recorded after the previous run's.
    const admitted = await Promise.all(bySeq.map((s) => admittedAt(s.workflowId)));
    for (let i = 1; i < admitted.length; i++) expect(admitted[i]).toBeGreaterThanOrEqual(admitted[i - 1] as number);
    // And a run's task starts only after its admission.
    finals.forEach((f, i) =>
      expect(Date.parse(f.tasks['work']?.startedAt ?? '')).toBeGreaterThanOrEqual(admitted[i] as number),
    );

    const view = await rf.getChangegroup(changegroup);
    expect(view).toMatchObject({ limit: 2, active: [], queued: [], submitted: 20 });
  });

  it('two mutating calls with one token: exactly one succeeds, the other gets Conflict (client and CLI)', async () => {
    const changegroup = uniqueName('cg-race');
    const token = await rf.getUpdateToken([changegroup]);
    const ids = [uniqueName('a'), uniqueName('b')];
    const results = await Promise.allSettled(
      ids.map((id) => rf.submitRun(spec('race'), { id, changegroup, limit: 1, token })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'Conflict', source: 'user' });
    // Nothing started for the loser, nothing recorded.
    const loserId = ids[results.indexOf(lost[0] as PromiseRejectedResult)] as string;
    await expectNoRun(`run${group}/${loserId}`);
    const view = await rf.getChangegroup(changegroup);
    expect(view.submitted).toBe(1);

    // Through the CLI: separate processes racing with one token. Read once the first run has
    // ended: its end (`release`) is a change too, and would make both tokens stale.
    await rf.waitRun((won[0] as PromiseFulfilledResult<SubmittedRun>).value.workflowId);
    await untilRead(
      'no active run',
      async () => await rf.getChangegroup(changegroup),
      (v) => v.active.length === 0,
      WAIT,
    );
    const cliToken = (await cli(['changegroup', 'token', changegroup])).stdout.trim();
    expect(cliToken).toMatch(/^cg1\./);
    const file = runFile('race', spec('race cli'));
    const procs = await Promise.all(
      [0, 1].map(() => cli(['run', 'submit', file, '--changegroup', changegroup, '--token', cliToken])),
    );
    expect(procs.map((p) => p.code).sort()).toEqual([0, 2]);
    const loser = procs.find((p) => p.code === 2) as CliResult;
    expect(loser.stderr.trim().split('\n')).toHaveLength(1);
    expect(loser.stderr).toMatch(/^runfleet: changegroup ".*" changed since the update token was read/);
    expect((await rf.getChangegroup(changegroup)).submitted).toBe(2);
  });

  it('a token is stale after any mutation: submit, limit and cancel with it are refused', async () => {
    const changegroup = uniqueName('cg-stale');
    const other = uniqueName('cg-other');
    const token = await rf.getUpdateToken([changegroup]);
    const view = await rf.setChangegroupLimit(changegroup, 3, { token });
    expect(view).toMatchObject({ limit: 3, version: 1 });

    const id = uniqueName('stale');
    await expectConflict(rf.submitRun(spec('stale'), { id, changegroup, token }));
    await expectNoRun(`run${group}/${id}`);
    await expectConflict(rf.setChangegroupLimit(changegroup, 5, { token }));
    expect((await rf.getChangegroup(changegroup)).limit).toBe(3);
    const limit = await cli(['changegroup', 'limit', changegroup, '4', '--token', token]);
    expect(limit.code).toBe(2);
    expect(limit.stderr).toMatch(/changed since the update token was read/);

    // A token-checked cancel with a stale token leaves the run alone.
    const fresh = await rf.getUpdateToken([changegroup]);
    const run = await rf.submitRun(spec('cancel me', ['sleep 30']), { changegroup, token: fresh });
    await expectConflict(rf.cancelRun(run.workflowId, { reason: 'stale' }, { token: fresh }));
    await rf.cancelRun(
      run.workflowId,
      { reason: 'fresh', by: 'test' },
      { token: await rf.getUpdateToken([changegroup]) },
    );
    expect((await rf.waitRun(run.workflowId)).result).toBe('stopped');

    // A token over two changegroups: a change to either refuses the mutation.
    const both = await rf.getUpdateToken([changegroup, other]);
    await rf.setChangegroupLimit(other, 1, { token: await rf.getUpdateToken([other]) });
    const id2 = uniqueName('both');
    await expectConflict(rf.submitRun(spec('both'), { id: id2, changegroup, token: both }));
    await expectNoRun(`run${group}/${id2}`);
    const show = await cli(['changegroup', 'show', other, '--json']);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ name: other, limit: 1, version: 1 });
  });

  it('stopping a queued run removes it from the queue; the next queued run starts when a slot frees', async () => {
    const changegroup = uniqueName('cg-stop');
    const first = await rf.submitRun(spec('first', ['sleep 2']), { changegroup, limit: 1 });
    const second = await rf.submitRun(spec('second'), { changegroup });
    const third = await rf.submitRun(spec('third'), { changegroup });
    expect([first, second, third].map((r) => r.changegroup?.admitted)).toEqual([true, false, false]);
    expect((await rf.getChangegroup(changegroup)).queued).toEqual([second.workflowId, third.workflowId]);
    expect((await rf.getRun(second.workflowId)).phase).toBe('queued');

    await rf.cancelRun(second.workflowId, { reason: 'not needed', by: 'test' });
    const stopped = await rf.waitRun(second.workflowId);
    expect(stopped).toMatchObject({ phase: 'cancelled', result: 'stopped' });
    expect(stopped.tasks['work']?.attempts).toBe(0);
    const view = await untilRead(
      'one queued run',
      async () => await rf.getChangegroup(changegroup),
      (v) => v.queued.length === 1,
      WAIT,
    );
    expect(view.queued).toEqual([third.workflowId]);
    expect(view.active).toEqual([first.workflowId]);

    const [a, c] = await Promise.all([rf.waitRun(first.workflowId), rf.waitRun(third.workflowId)]);
    expect(a.result).toBe('success');
    expect(c.result).toBe('success');
    expect(Date.parse(c.tasks['work']?.startedAt ?? '')).toBeGreaterThanOrEqual(
      Date.parse(a.tasks['work']?.finishedAt ?? ''),
    );
    expect(await rf.getChangegroup(changegroup)).toMatchObject({ active: [], queued: [] });
  });

  it('a restart of a run of a changegroup goes through it: queued while another run holds the slot', async () => {
    const changegroup = uniqueName('cg-restart');
    // The old run fails until the test makes this file; the holder runs until the test makes the gate.
    const ok = join(h.dataDir, `${changegroup}.ok`);
    const gate = join(h.dataDir, `${changegroup}.gate`);
    const old = await rf.submitRun(spec('restarted', [`test -f ${ok}`]), { changegroup, limit: 1 });
    expect((await rf.waitRun(old.workflowId)).result).toBe('failed');
    await untilRead(
      'no active run',
      async () => await rf.getChangegroup(changegroup),
      (v) => v.active.length === 0,
      WAIT,
    );
    // Bounded: a holder the test never releases ends the test instead of hanging it.
    const holder = await rf.submitRun(
      spec('holder', [`for i in $(seq 600); do test -f ${gate} && exit 0; sleep 0.1; done; exit 9`]),
      { changegroup },
    );
    expect(holder.changegroup?.admitted).toBe(true);
    writeFileSync(ok, '');

    const restarted = await rf.restartRun(old.workflowId);
    expect(restarted.changegroup).toMatchObject({ name: changegroup, admitted: false });
    expect(await rf.getChangegroup(changegroup)).toMatchObject({
      active: [holder.workflowId],
      queued: [restarted.workflowId],
    });
    // Queued, and still so a while later: nothing of it runs while the holder has the slot.
    await new Promise((r) => setTimeout(r, 2_000));
    const waiting = await rf.getRun(restarted.workflowId);
    expect(waiting.phase).toBe('queued');
    expect(waiting.tasks['work']?.attempts).toBe(0);

    writeFileSync(gate, '');
    const [held, again] = await Promise.all([rf.waitRun(holder.workflowId), rf.waitRun(restarted.workflowId)]);
    expect(held.result).toBe('success');
    expect(again).toMatchObject({ result: 'success', restartOf: old.workflowId });
    expect(Date.parse(again.tasks['work']?.startedAt ?? '')).toBeGreaterThanOrEqual(
      Date.parse(held.tasks['work']?.finishedAt ?? ''),
    );
    expect(await rf.getChangegroup(changegroup)).toMatchObject({ active: [], queued: [], submitted: 3 });
  });

  it('continues as new when its history grows, keeping its state, queue and runs', async () => {
    const changegroup = uniqueName('cg-can');
    const workflowId = changegroupWorkflowId(changegroup);
    // A low threshold (the default is 2,000 events) so a few runs cross it several times.
    const input: ChangegroupInput = { name: changegroup, continueAsNewAt: 40 };
    const started = await h.client.workflow.start('changegroupWorkflow', {
      workflowId,
      taskQueue: h.controlQueue,
      args: [input],
    });
    const runs: SubmittedRun[] = [];
    for (let i = 0; i < 8; i++) runs.push(await rf.submitRun(spec(`can ${i}`), { changegroup, limit: 1 }));
    const finals = await Promise.all(runs.map((r) => rf.waitRun(r.workflowId)));
    for (const f of finals) expect(f.result).toBe('success');
    const view = await untilRead(
      'no active run',
      async () => await rf.getChangegroup(changegroup),
      (v) => v.active.length === 0,
      WAIT,
    );
    expect(view).toMatchObject({ limit: 1, queued: [], submitted: 8 });
    const current = await h.client.workflow.getHandle(workflowId).describe();
    expect(current.runId).not.toBe(started.firstExecutionRunId);
    expect(current.status.name).toBe('RUNNING');
    expect(current.historyLength).toBeLessThan(120);
  });

  it('a run terminated without release gives its slot back, even across continue-as-new', async () => {
    const changegroup = uniqueName('cg-term');
    // Continue as new after every change, so no execution watches the run it terminates.
    const input: ChangegroupInput = { name: changegroup, continueAsNewAt: 5, probeEveryMs: 500 };
    await h.client.workflow.start('changegroupWorkflow', {
      workflowId: changegroupWorkflowId(changegroup),
      taskQueue: h.controlQueue,
      args: [input],
    });
    const first = await rf.submitRun(spec('terminated', ['sleep 60']), { changegroup, limit: 1 });
    const next = await rf.submitRun(spec('next'), { changegroup });
    expect(next.changegroup?.admitted).toBe(false);
    await h.client.workflow.getHandle(first.workflowId).terminate('test: no release');
    expect((await rf.waitRun(next.workflowId)).result).toBe('success');
    expect(await rf.getChangegroup(changegroup)).toMatchObject({ active: [], queued: [] });
  });
});
