/** Every workflow the control worker registers. Deterministic code only (lint-enforced). */
export { runWorkflow } from './run';
export type { RunInput } from './run';
export { fetchTaskLogWorkflow } from './log';
export type { FetchTaskLogInput } from './log';
export { runArtifactsWorkflow } from './artifacts';
export type { RunArtifactsInput } from './artifacts';
export { changegroupWorkflow } from './changegroup';
export type { ChangegroupInput } from './changegroup';
export { fleetWorkflow } from './fleet';
export type { FleetInput, FleetStatus, ProvisionRequest, ProvisionResult, RefreshResult } from './fleet';
export { runnerWorkflow } from './runner';
