/**
 * What the runner registry tells an EC2 fleet about the runners it launched (`runner/<name>`
 * with a `fleet` link → `fleet/<name>`). Signals: the registry never waits for the fleet.
 * Sandbox-safe: both workflows import it. The payload types are defined in src/fleet/types.ts
 * (the registry's and the fleet's pure state modules use them) and re-exported here.
 */
import { defineSignal } from '@temporalio/workflow';
import type { RunnerGone, RunnerRegistered } from '../src/fleet/types';

export type { FleetLink, RunnerGone, RunnerRegistered } from '../src/fleet/types';

export const runnerRegisteredSignal = defineSignal<[RunnerRegistered]>('runnerRegistered');
export const runnerGoneSignal = defineSignal<[RunnerGone]>('runnerGone');
