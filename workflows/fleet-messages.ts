/**
 * What the runner registry tells an EC2 fleet about the runners it launched (`runner/<name>`
 * with a `fleet` link → `fleet/<name>`). Signals: the registry never waits for the fleet.
 * Sandbox-safe: both workflows import it.
 */
import { defineSignal } from '@temporalio/workflow';

/** A registry runner's link to the fleet instance it runs on. */
export interface FleetLink {
  /** The fleet: workflow `fleet/<name>`. */
  name: string;
  instanceId: string;
}

/** The instance's runner registered with a valid fleet token: the instance goes from created to idle. */
export interface RunnerRegistered {
  runner: string;
  instanceId: string;
  tokenId: string;
}

/** The instance's runner was purged (lost, or by an operator): the instance can serve no task. */
export interface RunnerGone {
  runner: string;
  instanceId: string;
  by: string;
  reason: string;
}

export const runnerRegisteredSignal = defineSignal<[RunnerRegistered]>('runnerRegistered');
export const runnerGoneSignal = defineSignal<[RunnerGone]>('runnerGone');
