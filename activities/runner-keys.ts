/**
 * The runners' signing keys, served by the control worker (trusted) to the run workflows. A run
 * verifies with them what runners tell it (`src/security/runner-proof.ts`). The registry
 * workflow's state is not trusted (anyone with namespace access can start `runner/<name>` with any
 * state): a key counts only when its admission verifies here, as for key delivery: the operator
 * signed the grant for this runner, and the grant's token signed the proof naming the key.
 */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { asFailure } from '../src/failures';
import { runnerWorkflowId } from '../src/ids';
import { admissionQuery, recordQuery } from '../workflows/runner-messages';
import { verifyAdmission } from './registry';
import type { RunnerKeyActivities } from './types';

export interface RunnerKeyActivityDeps {
  /**
   * Runs refuse what runners say without a proof their registered signing key verifies. Off
   * only where runners have no registry record (in-process test runners): then nothing is checked.
   */
  requireProofs: boolean;
  /** base64 of the operator's Ed25519 public key: without it no runner's key is vouched for. */
  operatorPublicKey: string | null;
  /** Reads one runner's vouched key. Default: its registry record, through the worker's client. */
  readKey?: (runner: string) => Promise<string | null>;
  /** How long a key read from the registry answers again. Default KEY_CACHE_MS. */
  cacheMs?: number;
  /** For tests: the clock. Default `Date.now`. */
  now?: () => number;
}

/** The signing key an admission vouches for, or null when it does not verify. */
function verifiedSigningKey(
  operatorPublicKey: string | null,
  name: string,
  admission: Parameters<typeof verifyAdmission>[1] & object,
): string | null {
  try {
    verifyAdmission(operatorPublicKey, admission, admission.proof.publicKey, runnerWorkflowId(name));
    return admission.proof.signingKey;
  } catch {
    return null;
  }
}

/** One runner's vouched key from its registry record; null when nobody vouches for it. */
async function registryKey(client: Client, operatorPublicKey: string | null, name: string): Promise<string | null> {
  try {
    const handle = client.workflow.getHandle(runnerWorkflowId(name));
    const record = await handle.query(recordQuery);
    const admission = record.status === 'deleted' ? null : await handle.query(admissionQuery);
    return admission ? verifiedSigningKey(operatorPublicKey, name, admission) : null;
  } catch (err) {
    // No registry record: nobody vouches for this runner.
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** Runners asked about in one call at most (a run asks for the few it meets). */
const MAX_RUNNERS = 100;
/**
 * A key read from the registry answers again for this long: a thousand small runs on one runner
 * ask for its key a thousand times, two registry queries each. A key a runner lost (purged,
 * registered again) is believed this long at most; a run that refused a message with it reads
 * the registry afresh (`fresh`).
 */
export const KEY_CACHE_MS = 5_000;
/** Keys kept in memory at most (the oldest goes first). */
const MAX_CACHED_KEYS = 10_000;
/** `knownRunnerKeys`: pools asked about at most, and runners remembered per pool (the latest met). */
const MAX_POOLS = 16;
const MAX_RUNNERS_PER_POOL = 64;
const MAX_POOLS_KEPT = 1_000;

export function createRunnerKeyActivities(deps: RunnerKeyActivityDeps): RunnerKeyActivities {
  const now = deps.now ?? Date.now;
  const cacheMs = deps.cacheMs ?? KEY_CACHE_MS;
  const cache = new Map<string, { key: string | null; at: number }>();
  /** The runners met on each pool (insertion order: the latest last). */
  const met = new Map<string, Set<string>>();
  /** Background reads under way (a key about to expire is read again before it does). */
  const refreshing = new Set<string>();

  function remember(name: string, key: string | null): void {
    cache.delete(name);
    cache.set(name, { key, at: now() });
    if (cache.size > MAX_CACHED_KEYS) cache.delete(cache.keys().next().value as string);
  }

  function meet(pool: string, runner: string): void {
    const runners = met.get(pool) ?? new Set<string>();
    met.delete(pool);
    met.set(pool, runners);
    runners.delete(runner);
    runners.add(runner);
    if (runners.size > MAX_RUNNERS_PER_POOL) runners.delete(runners.values().next().value as string);
    if (met.size > MAX_POOLS_KEPT) met.delete(met.keys().next().value as string);
  }

  /** The read the activity uses: the injected one, or the registry through this activity's client. */
  function reader(): (name: string) => Promise<string | null> {
    if (deps.readKey) return deps.readKey;
    const client = Context.current().client;
    return (name) => registryKey(client, deps.operatorPublicKey, name);
  }

  return {
    async runnerSigningKeys({ runners, fresh, pool }) {
      if (!deps.requireProofs) return { required: false, keys: {} };
      const names = [...new Set(Array.isArray(runners) ? runners : [])].slice(0, MAX_RUNNERS);
      const read = reader();
      const keys: Record<string, string | null> = {};
      try {
        await Promise.all(
          names.map(async (name) => {
            const cached = cache.get(name);
            if (fresh !== true && cached && now() - cached.at < cacheMs) {
              keys[name] = cached.key;
            } else {
              keys[name] = await read(name);
              remember(name, keys[name] ?? null);
            }
            if (typeof pool === 'string' && pool.length > 0) meet(pool, name);
          }),
        );
      } catch (err) {
        throw asFailure(err);
      }
      return { required: true, keys };
    },

    async knownRunnerKeys({ pools, runners }) {
      if (!deps.requireProofs) return { required: false, keys: {} };
      const names = new Set(Array.isArray(runners) ? runners.slice(0, MAX_RUNNERS) : []);
      for (const pool of Array.isArray(pools) ? pools.slice(0, MAX_POOLS) : []) {
        for (const name of met.get(pool) ?? []) names.add(name);
      }
      const keys: Record<string, string | null> = {};
      let read: ((name: string) => Promise<string | null>) | null = null;
      for (const name of names) {
        const cached = cache.get(name);
        if (!cached) continue;
        const age = now() - cached.at;
        if (age >= cacheMs) continue;
        // Only keys: a runner nobody vouches for is looked up (and refused) as before.
        if (cached.key !== null) keys[name] = cached.key;
        // Read again in the background past half its life, so steady traffic keeps finding it.
        if (age >= cacheMs / 2 && !refreshing.has(name)) {
          refreshing.add(name);
          read ??= reader();
          read(name)
            .then((key) => remember(name, key))
            .catch(() => undefined)
            .finally(() => refreshing.delete(name));
        }
      }
      return { required: true, keys };
    },
  };
}
