/**
 * Every workflow the control worker registers. Deterministic code only (lint-enforced).
 *
 * The SDK evaluates a workflow's modules again for each workflow it starts (all but the preloaded
 * ones: src/codec/index.ts), from this file down. Each export below loads its workflow's modules
 * when that workflow is started, not before, so a run does not build the fleet's or the runner
 * registry's (their zod schemas, the fleet's planner) and they do not build a run's.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- a workflow's modules, loaded when it starts (above) */
import type * as Artifacts from './artifacts';
import type * as Changegroup from './changegroup';
import type * as Fleet from './fleet';
import type * as Log from './log';
import type * as Run from './run';
import type * as Runner from './runner';

export type { RunInput } from './run';
export type { FetchTaskLogInput } from './log';
export type { RunArtifactsInput } from './artifacts';
export type { ChangegroupInput } from './changegroup';
export type { FleetInput, FleetStatus, ProvisionRequest, ProvisionResult, RefreshResult } from './fleet';

export const runWorkflow: typeof Run.runWorkflow = (...args) => (require('./run') as typeof Run).runWorkflow(...args);

export const fetchTaskLogWorkflow: typeof Log.fetchTaskLogWorkflow = (...args) =>
  (require('./log') as typeof Log).fetchTaskLogWorkflow(...args);

export const runArtifactsWorkflow: typeof Artifacts.runArtifactsWorkflow = (...args) =>
  (require('./artifacts') as typeof Artifacts).runArtifactsWorkflow(...args);

export const changegroupWorkflow: typeof Changegroup.changegroupWorkflow = (...args) =>
  (require('./changegroup') as typeof Changegroup).changegroupWorkflow(...args);

export const fleetWorkflow: typeof Fleet.fleetWorkflow = (...args) =>
  (require('./fleet') as typeof Fleet).fleetWorkflow(...args);

export const runnerWorkflow: typeof Runner.runnerWorkflow = (...args) =>
  (require('./runner') as typeof Runner).runnerWorkflow(...args);
