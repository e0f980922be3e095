/** A task's whole log through the client (`RunfleetClient.readTaskLog`), page after page. */
import type { RunfleetClient } from '../../src/client/client';

export async function readWholeTaskLog(rf: RunfleetClient, runId: string, task: string): Promise<string> {
  let text = '';
  for (let offset = 0; ;) {
    const chunk = await rf.readTaskLog(runId, task, offset);
    text += chunk.data;
    if (chunk.nextOffset === offset || chunk.complete) return text;
    offset = chunk.nextOffset;
  }
}
