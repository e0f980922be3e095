/** Updates and queries of the changegroup workflow, shared by the workflow and its clients. */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { ChangegroupView, Submitted } from '../src/changegroup/state';

/** The changegroup's version, limit, active and queued runs. */
export const changegroupQuery = defineQuery<ChangegroupView>('state');

/** Fields every token-checked update takes. */
export interface TokenCheck {
  /** The version the caller's update token holds for this changegroup; absent: no check. */
  expectedVersion?: number;
}

/** Submits a run to the changegroup, which starts its workflow (see `submitRun` in the workflow). */
export interface SubmitRunRequest extends TokenCheck {
  /** The run's workflow id, `run/<group>/<id>`. */
  workflowId: string;
  /** The run's input without `admission` (the changegroup adds it): what the user wrote. */
  input: { spec: unknown; options?: unknown; restart?: unknown };
  /** The run's name (memo). */
  name: string;
  /** Also set the limit, in the same mutation; absent: leave it. */
  limit?: number | null;
}
/** Where the run stands in the changegroup, and Temporal's run id of its workflow. */
export type SubmitRunResult = Submitted & { runId: string };
export const submitRunUpdate = defineUpdate<SubmitRunResult, [SubmitRunRequest]>('submitRun');

export interface SetLimitRequest extends TokenCheck {
  limit: number | null;
}
export const setLimitUpdate = defineUpdate<ChangegroupView, [SetLimitRequest]>('setLimit');

/** A token check that changes nothing else: the version moves, so the token is spent. */
export const checkTokenUpdate = defineUpdate<ChangegroupView, [TokenCheck]>('checkToken');

/** The workflow type, as `temporal workflow start --type` takes it. */
export const CHANGEGROUP_WORKFLOW_TYPE = 'changegroupWorkflow';
