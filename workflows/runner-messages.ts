/**
 * The runner registry's contract: the entity workflow `runner/<name>` (one per runner, see
 * `workflows/runner.ts`), its clients (the CLI, the runner agent) and the run workflows that
 * tell it which of their tasks are lost on it. Sandbox-safe.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  AdminRequest,
  Admission,
  ConnectRequest,
  IssueTokenRequest,
  LostTaskRef,
  PingReply,
  RegisterRequest,
  RegistrationGrant,
  RunnerRecord,
  RunnerSettings,
} from '../src/registry/types';

export * from '../src/registry/types';

export const issueTokenUpdate = defineUpdate<RunnerRecord, [IssueTokenRequest]>('issueToken');
export const revokeTokenUpdate = defineUpdate<RunnerRecord, [AdminRequest]>('revokeToken');
export const registerUpdate = defineUpdate<RegistrationGrant, [RegisterRequest]>('register');
export const connectUpdate = defineUpdate<RegistrationGrant, [ConnectRequest]>('connect');
export const enableUpdate = defineUpdate<RunnerRecord, [AdminRequest]>('enable');
export const disableUpdate = defineUpdate<RunnerRecord, [AdminRequest]>('disable');
/** Remove from the fleet: lost tasks fail with the reason; a connected runner wipes itself. */
export const purgeUpdate = defineUpdate<RunnerRecord, [AdminRequest]>('purge');
export const pingUpdate = defineUpdate<PingReply, []>('ping');
export const configureUpdate = defineUpdate<RunnerRecord, [Partial<RunnerSettings> & AdminRequest]>('configure');
/** Sent by the runner when a session starts (it is back). */
export const sessionOnlineSignal =
  defineSignal<[{ runnerId: string; bootId: string; generation: number }]>('sessionOnline');
export const taskLostSignal = defineSignal<[LostTaskRef]>('taskLost');
export const taskFoundSignal = defineSignal<[LostTaskRef]>('taskFound');
export const recordQuery = defineQuery<RunnerRecord>('record');
/**
 * What admitted the registered identity (null before registration, or for a runner registered
 * before grants). Not trusted as such: check it with `verifyAdmission` (activities/registry.ts)
 * on a control worker before using `proof.signingKey`.
 */
export const admissionQuery = defineQuery<Admission | null>('admission');
