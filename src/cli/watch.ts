/** Live progress of a run, shared by `run watch`, `run submit --wait` and `up --submit`. */
import type { RunfleetClient } from '../client';
import type { RunState } from '../types';
import type { Output } from './output';
import { progressSummary, runHeadline, taskChanges, taskTable } from './render';

/**
 * Follows a run to its end: redraws the task table on a terminal, prints each change on a line
 * otherwise. Returns the final state.
 */
export async function followRun(
  client: RunfleetClient,
  out: Output,
  workflowId: string,
  signal?: AbortSignal,
): Promise<RunState> {
  let prev: RunState | null = null;
  const final = await client.watchRun(
    workflowId,
    (state) => {
      if (out.interactive) out.live([runHeadline(state), progressSummary(state), '', ...taskTable(state).split('\n')]);
      else for (const line of taskChanges(prev, state)) out.line(line);
      prev = state;
    },
    { signal },
  );
  out.endLive();
  out.line(`run ${final.id} ${final.phase}: ${final.result}${final.reason ? ` (${final.reason})` : ''}`);
  return final;
}
