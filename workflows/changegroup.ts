/**
 * One changegroup (`changegroup/<name>`): an entity workflow that holds the changegroup's version,
 * its limit of active runs, and its active and queued runs (src/changegroup/state.ts), and
 * serializes every change to them. Clients reach it with update-with-start, so the first call
 * creates it; it never ends by itself and continues as new when its history grows.
 *
 * Submitting a run is ONE update: the validator refuses a stale update token (`Conflict`:
 * nothing started, nothing recorded), the handler bumps the version, records the run and starts
 * its workflow. Runs are started as child workflows (parent close policy ABANDON, the run's own
 * workflow id) rather than by an activity: the start is a command in this workflow's history,
 * issued in the same workflow task that records the run, so "recorded" and "started" cannot
 * disagree after a crash (replay issues the same command), no Temporal client is needed inside
 * a worker, and a taken id fails the update deterministically. The cost, ~5 history events per
 * run, is bounded by continue-as-new; ABANDON keeps runs alive across it.
 *
 * A run admitted at once is sent `admit` after its start; the others wait in the queue. A run
 * sends `release` when it ends (workflows/run.ts), which admits the next queued run, in
 * submission order. `admit` signals go out one at a time from the main loop, in the order the
 * state decided them.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import * as cg from '../src/changegroup/state';
import { failure } from '../src/failures';
import { WORKFLOW_TYPES } from '../src/ids';
import { RUN_PATCH_GATE } from '../src/run/patches';
import {
  changegroupQuery,
  checkTokenUpdate,
  setLimitUpdate,
  submitRunUpdate,
  type SubmitRunRequest,
  type TokenCheck,
} from './changegroup-messages';
import { carriedStateProblem, invalidStart, refuseStart, wholeNumberProblem } from './start-checks';
import { admitSignal, releaseSignal } from './run-messages';

/** The workflow's argument: the changegroup's name, and its state when it continued as new. */
export interface ChangegroupInput {
  name: string;
  state?: cg.ChangegroupState;
  /** Continue as new past this many history events. Default 2,000 (tests set it lower). */
  continueAsNewAt?: number;
  /** How often active runs nobody watches are checked while runs wait. Default 60 s (tests set it lower). */
  probeEveryMs?: number;
}

/**
 * Continue as new past this many events (or when the server suggests it): a changegroup lives
 * forever and is replayed on every cache miss, so its history is kept short, far below
 * Temporal's 10,240-event warning (~400 runs' worth).
 */
const CONTINUE_AS_NEW_AT_EVENTS = 2_000;
/**
 * While runs wait, active runs this execution did not start (they predate a continue-as-new, so
 * nothing here sees them end) are sent `admit` again this often: a run terminated without
 * `release` fails the signal and gives its slot back. A minute: a leaked slot is rare, and each
 * check costs every such run a workflow task.
 */
const PROBE_EVERY_MS = 60_000;

export async function changegroupWorkflow(input: ChangegroupInput): Promise<void> {
  if (typeof input?.name !== 'string' || input.name.length === 0) {
    invalidStart('changegroupWorkflow takes {"name": "<changegroup>"}');
  }
  refuseStart(
    carriedStateProblem('state', input.state, 'changegroup workflow'),
    // A history of a few events is where a new execution already is: it would continue as new forever.
    wholeNumberProblem('continueAsNewAt', input.continueAsNewAt, 5, 50_000),
    wholeNumberProblem('probeEveryMs', input.probeEveryMs, 100, 86_400_000),
  );
  const state: cg.ChangegroupState = input.state ?? cg.initialState(input.name);
  const continueAsNewAt = input.continueAsNewAt ?? CONTINUE_AS_NEW_AT_EVENTS;
  const probeEveryMs = input.probeEveryMs ?? PROBE_EVERY_MS;
  /** Runs to send `admit`, in the order the state admitted them. */
  const outbox: string[] = [];
  /** Runs whose workflow start is in flight: their `admit` (and every later one) waits for it. */
  const starting = new Set<string>();
  /** Runs started by this execution: their end is seen here even without `release`. */
  const watched = new Set<string>();

  const admitAll = (effects: cg.Effects) => void outbox.push(...effects.admit);

  setHandler(changegroupQuery, () => state);

  setHandler(
    submitRunUpdate,
    async (req) => {
      // Checked again here, where the version moves: one winner per token then holds whatever
      // order the SDK runs the validators and handlers of one workflow task in.
      validateSubmit(req);
      if (req.limit !== undefined && req.limit !== state.limit) admitAll(cg.setLimit(state, req.limit));
      const submitted = cg.submit(state, req.workflowId);
      starting.add(req.workflowId);
      // Queued now, in the order the state decided; sent once the start below has finished.
      if (submitted.admitted) outbox.push(req.workflowId);
      let runId: string;
      try {
        const child = await startChild(WORKFLOW_TYPES.run, {
          workflowId: req.workflowId,
          // The changegroup, not the submitter, names the run's admission and patch gate.
          args: [{ ...req.input, admission: { changegroup: state.name }, patchGate: RUN_PATCH_GATE }],
          // A run outlives this workflow's continue-as-new (and the changegroup itself).
          parentClosePolicy: 'ABANDON',
          // A run id names one run forever.
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          memo: { name: req.name, changegroup: state.name, changegroupSeq: submitted.seq },
        });
        runId = child.firstExecutionRunId;
        watched.add(req.workflowId);
        // A run that ends without `release` (terminated) gives its slot back too, as long as
        // this execution watches it (not across continue-as-new).
        void child.result().then(
          () => admitAll(cg.release(state, req.workflowId)),
          () => admitAll(cg.release(state, req.workflowId)),
        );
      } catch (err) {
        admitAll(cg.release(state, req.workflowId));
        // The SDK's class is not exported by @temporalio/workflow: matched by its name.
        if (err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError')
          throw failure('AlreadyExists', `a run with id ${req.workflowId} exists already; choose another --id`);
        throw failure('Internal', `could not start run ${req.workflowId}: ${describe(err)}`);
      } finally {
        starting.delete(req.workflowId);
      }
      return { ...submitted, runId };
    },
    { validator: validateSubmit },
  );

  setHandler(
    setLimitUpdate,
    (req) => {
      validateSetLimit(req);
      admitAll(cg.setLimit(state, req.limit));
      return state;
    },
    { validator: validateSetLimit },
  );

  setHandler(
    checkTokenUpdate,
    (req) => {
      checkToken(req);
      cg.touch(state);
      return state;
    },
    { validator: checkToken },
  );

  setHandler(releaseSignal, (sig) => admitAll(cg.release(state, String(sig?.runId))));

  const ready = () => outbox.length > 0 || (historyIsLong(continueAsNewAt) && allHandlersFinished());
  const unwatched = () => (state.queued.length > 0 ? state.active.filter((id) => !watched.has(id)) : []);
  let nextProbeAt = Date.now() + probeEveryMs;
  for (;;) {
    if (unwatched().length === 0) {
      await condition(ready);
      nextProbeAt = Date.now() + probeEveryMs;
    } else if (!(await condition(ready, Math.max(1, nextProbeAt - Date.now())))) {
      nextProbeAt = Date.now() + probeEveryMs;
      for (const id of unwatched()) outbox.push(id);
      continue;
    }
    const runId = outbox.shift();
    if (runId === undefined) {
      // Nothing in flight and nothing to send: the state is all there is.
      await continueAsNew<typeof changegroupWorkflow>({ ...input, state });
      return;
    }
    await condition(() => !starting.has(runId));
    if (!state.active.includes(runId)) continue; // its start failed, or it was released meanwhile
    try {
      await getExternalWorkflowHandle(runId).signal(admitSignal);
    } catch {
      // The run is gone (it ended or was terminated without `release`): its slot is free.
      admitAll(cg.release(state, runId));
    }
  }

  function checkToken(req: TokenCheck): void {
    const stale = cg.staleTokenProblem(state, req?.expectedVersion);
    if (stale) throw failure('Conflict', stale);
  }

  function validateSetLimit(req: { limit: number | null } & TokenCheck): void {
    const bad = cg.limitProblem(req?.limit);
    if (bad) throw failure('InvalidArgument', bad);
    checkToken(req);
  }

  function validateSubmit(req: SubmitRunRequest): void {
    if (typeof req?.workflowId !== 'string' || req.workflowId.length === 0 || typeof req.input !== 'object')
      throw failure('InvalidArgument', 'submitRun takes {"workflowId", "input", "name"}');
    if (req.limit !== undefined) {
      const bad = cg.limitProblem(req.limit);
      if (bad) throw failure('InvalidArgument', bad);
    }
    checkToken(req);
    if (cg.hasRun(state, req.workflowId) || starting.has(req.workflowId))
      throw failure('AlreadyExists', `a run with id ${req.workflowId} exists already; choose another --id`);
  }
}

function historyIsLong(atEvents: number): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength > atEvents;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
