/** The Runfleet client library: `import { RunfleetClient } from 'runfleet/src/client'`. */
export {
  RunfleetClient,
  DEFAULT_LOG_LIMIT,
  type FromClientOptions,
  type ListRunsFilter,
  type RunSummary,
  type RunfleetClientOptions,
  type SubmitOptions,
  type SubmittedRun,
  type TaskLogChunk,
  type WatchOptions,
} from './client';
export { toRunfleetError, isUnavailable } from './errors';
export { DEFAULT_GROUP, checkRunId, newRunId, resolveRunWorkflowId } from './ids';
export { RunfleetError, type ErrorCode } from '../errors';
export type { RunState, TaskState, RunPhase, RunResult } from '../types';
export type { RunSpecInput } from '../spec/schema';
