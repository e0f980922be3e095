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
import { sleep } from '../src/sleep';
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
  /** Reads one runner's vouched key and pool. Default: its registry record, through the worker's client. */
  readKey?: (runner: string) => Promise<VouchedKey | null>;
  /** How long a key read from the registry answers again. Default KEY_CACHE_MS. */
  cacheMs?: number;
  /** For tests: the clock. Default `Date.now`. */
  now?: () => number;
  /** For tests: each read of the registry takes at least this long (a slow registry). Default 0. */
  readDelayMs?: number;
}

/** What the operator vouched for, for one runner: its signing key and the pool it admitted it to. */
export interface VouchedKey {
  key: string;
  pool: string;
}

/** The signing key and pool an admission vouches for, or null when it does not verify. */
function vouched(
  operatorPublicKey: string | null,
  name: string,
  admission: Parameters<typeof verifyAdmission>[1] & object,
): VouchedKey | null {
  try {
    const grant = verifyAdmission(operatorPublicKey, admission, admission.proof.publicKey, runnerWorkflowId(name));
    return { key: admission.proof.signingKey, pool: grant.pool };
  } catch {
    return null;
  }
}

/** One runner's vouched key and pool from its registry record; null when nobody vouches for it. */
async function registryKey(client: Client, operatorPublicKey: string | null, name: string): Promise<VouchedKey | null> {
  try {
    const handle = client.workflow.getHandle(runnerWorkflowId(name));
    const record = await handle.query(recordQuery);
    const admission = record.status === 'deleted' ? null : await handle.query(admissionQuery);
    return admission ? vouched(operatorPublicKey, name, admission) : null;
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
/** `knownRunnerKeys`: pools asked about at most, and runners answered at most. */
const MAX_POOLS = 16;
const MAX_KNOWN = 64;

export function createRunnerKeyActivities(deps: RunnerKeyActivityDeps): RunnerKeyActivities {
  const now = deps.now ?? Date.now;
  const cacheMs = deps.cacheMs ?? KEY_CACHE_MS;
  /** By runner name, the latest read last. */
  const cache = new Map<string, { vouched: VouchedKey | null; at: number }>();
  /** The cached runners of each pool (by their vouched pool). */
  const byPool = new Map<string, Set<string>>();
  /** Background reads under way (a key about to expire is read again before it does). */
  const refreshing = new Set<string>();

  function forget(name: string): void {
    const pool = cache.get(name)?.vouched?.pool;
    cache.delete(name);
    if (pool === undefined) return;
    const runners = byPool.get(pool);
    runners?.delete(name);
    if (runners?.size === 0) byPool.delete(pool);
  }

  function remember(name: string, v: VouchedKey | null): void {
    forget(name);
    cache.set(name, { vouched: v, at: now() });
    if (v) byPool.set(v.pool, (byPool.get(v.pool) ?? new Set()).add(name));
    if (cache.size > MAX_CACHED_KEYS) forget(cache.keys().next().value as string);
  }

  /** The read the activity uses: the injected one, or the registry through this activity's client. */
  function reader(): (name: string) => Promise<VouchedKey | null> {
    let read = deps.readKey;
    if (!read) {
      const client = Context.current().client;
      read = (name) => registryKey(client, deps.operatorPublicKey, name);
    }
    const delayMs = deps.readDelayMs ?? 0;
    if (delayMs <= 0) return read;
    const slow = read;
    return async (name) => {
      await sleep(delayMs);
      return slow(name);
    };
  }

  return {
    async runnerSigningKeys({ runners, fresh }) {
      if (!deps.requireProofs) return { required: false, keys: {} };
      const names = [...new Set(Array.isArray(runners) ? runners : [])].slice(0, MAX_RUNNERS);
      const read = reader();
      const keys: Record<string, string | null> = {};
      const pools: Record<string, string> = {};
      try {
        await Promise.all(
          names.map(async (name) => {
            const cached = cache.get(name);
            let v: VouchedKey | null;
            if (fresh !== true && cached && now() - cached.at < cacheMs) {
              v = cached.vouched;
            } else {
              v = await read(name);
              remember(name, v);
            }
            keys[name] = v?.key ?? null;
            if (v) pools[name] = v.pool;
          }),
        );
      } catch (err) {
        throw asFailure(err);
      }
      return { required: true, keys, pools };
    },

    async knownRunnerKeys({ pools, runners }) {
      if (!deps.requireProofs) return { required: false, keys: {} };
      const names = new Set(Array.isArray(runners) ? runners.slice(0, MAX_RUNNERS) : []);
      for (const pool of Array.isArray(pools) ? pools.slice(0, MAX_POOLS) : []) {
        for (const name of byPool.get(pool) ?? []) names.add(name);
      }
      const keys: Record<string, string> = {};
      const answeredPools: Record<string, string> = {};
      let answered = 0;
      let read: ((name: string) => Promise<VouchedKey | null>) | null = null;
      for (const name of names) {
        if (answered >= MAX_KNOWN) break;
        const cached = cache.get(name);
        // Only keys: a runner nobody vouches for is looked up (and refused) as before.
        if (!cached?.vouched) continue;
        const age = now() - cached.at;
        if (age >= cacheMs) continue;
        keys[name] = cached.vouched.key;
        answeredPools[name] = cached.vouched.pool;
        answered++;
        // Read again in the background past half its life, so steady traffic keeps finding it.
        if (age >= cacheMs / 2 && !refreshing.has(name)) {
          refreshing.add(name);
          read ??= reader();
          read(name)
            .then((again) => remember(name, again))
            .catch(() => undefined)
            .finally(() => refreshing.delete(name));
        }
      }
      return { required: true, keys, pools: answeredPools };
    },
  };
}
