/**
 * The fleet's side of the runner registry: every instance the fleet launches gets a temporary
 * registry runner, named after the instance, that registers with that instance's token; phase 3 of
 * a termination purges it. Activities of the fleet worker, built with the registry client.
 * Both are idempotent, so a retry after a crash converges.
 */
import type { Logger } from '@temporalio/common';
import type { RunnerSettings } from '../workflows/runner-messages';
import { RunfleetError } from '../src/errors';
import { asFailure } from '../src/failures';
import { fleetRunnerName, fleetWorkflowId } from '../src/ids';
import { deriveToken } from '../src/fleet/token';
import { signingKeyFromSeed } from '../src/security/operator';
import type { RunnerRegistryCalls } from './types';

/** The public key of a token `rfr_<id>_<seed>` (its seed may hold `_`: everything after the id). */
function tokenPublicKey(token: string, id: string): string {
  return signingKeyFromSeed(token.slice(`rfr_${id}_`.length)).publicKey;
}

export interface AdmitRequest {
  fleet: string;
  resourceClass: string;
  /** The pool the runners serve (the resource class's). */
  pool: string;
  instanceIds: string[];
  /**
   * The fleet token the instances were launched with: id, sha256 and expiry (never the token).
   * Its expiry is every instance token's; its id and hash serve only an instance launched by an
   * older worker, whose user data holds the fleet token itself.
   */
  token: { id: string; hash: string; expiresAt: string };
  /** Each instance's own token (the one in its user data), by instance id: its runner accepts only it. */
  instanceTokens?: Record<string, { id: string; hash: string }>;
  /** The runners' settings (the fleet's `runnerSettings`). */
  settings?: Partial<RunnerSettings>;
}

export interface PurgeRequest {
  fleet: string;
  runners: string[];
  reason: string;
}

export interface FleetRegistryActivities {
  admitRunners(req: AdmitRequest): Promise<{ admitted: number }>;
  /** Purges the runners (done when already gone); answers with those it found. */
  purgeRunners(req: PurgeRequest): Promise<{ purged: string[] }>;
}

export interface FleetRegistryDeps {
  /**
   * The registry client (the worker passes a `RunnerAdmin`); it signs each instance token's grant
   * with the operator key it holds.
   */
  registry: RunnerRegistryCalls;
  /** The secret instance tokens derive from: the registry gets each token's public key only. */
  tokenSecret: string;
  log: Logger;
  /** Registry calls in flight at once. Default 8. */
  concurrency?: number;
}

export function createFleetRegistryActivities(deps: FleetRegistryDeps): FleetRegistryActivities {
  const concurrency = deps.concurrency ?? 8;
  return {
    async admitRunners(req) {
      await inBatches(req.instanceIds, concurrency, (instanceId) => {
        const own = req.instanceTokens?.[instanceId] ?? req.token;
        // Registry token ids are hex; older fleet tokens were dashed UUIDs.
        const token = {
          id: own.id.replace(/-/g, ''),
          publicKey: tokenPublicKey(deriveToken(deps.tokenSecret, req.fleet, own.id), own.id),
          expiresAt: req.token.expiresAt,
        };
        return deps.registry
          .admit({
            name: fleetRunnerName(instanceId),
            pool: req.pool,
            labels: { fleet: req.fleet, class: req.resourceClass },
            fleet: { name: req.fleet, instanceId },
            token,
            ...(req.settings ? { settings: req.settings } : {}),
            by: fleetWorkflowId(req.fleet),
          })
          .catch((err: unknown) => {
            throw asFailure(err);
          });
      });
      return { admitted: req.instanceIds.length };
    },

    async purgeRunners(req) {
      const purged: string[] = [];
      await inBatches(req.runners, concurrency, async (name) => {
        try {
          await deps.registry.purge(name, { by: fleetWorkflowId(req.fleet), reason: req.reason, waitMs: 0 });
          purged.push(name);
        } catch (err) {
          if (err instanceof RunfleetError && err.code === 'NotFound') return; // gone already
          throw asFailure(err);
        }
      });
      if (purged.length > 0) deps.log.info('purged fleet runners', { fleet: req.fleet, count: purged.length });
      return { purged };
    },
  };
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}
