/** Live progress of a run, shared by `run watch`, `run submit --wait` and `up --submit`. */
import type { RunfleetClient } from '../client';
import type { RunState } from '../types';
import type { Output } from './output';
import { progressSummary, runHeadline, taskChanges, taskTable } from './render';

/**
 * Follows a run to its end: redraws the task table on a terminal, prints each change on a line
 * otherwise. Rides out a service that stops answering for a while. Returns the final state.
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
    // Said on stderr, so stdout stays the run's progress: what the watch waits for while the
    // service or the control worker does not answer, and when they are back.
    { signal, onWait: (message) => out.error(message) },
  );
  out.endLive();
  out.line(`run ${final.id} ${final.phase}: ${final.result}${final.reason ? ` (${final.reason})` : ''}`);
  return final;
}
