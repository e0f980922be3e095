/**
 * A real `runfleet runner serve` process admitted by an operator key (a token, then its identity
 * and signing key in the registry), and a signer whose key no registry knows: the parts of the
 * runner-identity attacks (security-identity.test.ts, key-prefetch.test.ts).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RunnerAdmin } from '../../src/client/runners';
import { createRunnerSigner, type RunnerSigner } from '../../src/security/runner-signer';
import type { Harness } from './harness';
import { startRunnerProcess, type Proc } from './processes';
import { uniqueName } from './temporal';
import { until } from './until';

export interface RegisteredRunner {
  name: string;
  pool: string;
  /** Its data directory (`identity.json` holds its signing seed). */
  dir: string;
  proc: Proc;
}

/** Creates runner `<prefix>-…` in a pool of its own and waits until it registered. Runs without data keys. */
export async function startRegisteredRunner(
  h: Harness,
  operatorSeed: string,
  prefix: { runner: string; pool: string; labels?: Record<string, string> },
): Promise<RegisteredRunner> {
  const name = uniqueName(prefix.runner);
  const pool = uniqueName(prefix.pool);
  const dir = join(h.dataDir, name);
  mkdirSync(dir, { recursive: true });
  const admin = new RunnerAdmin(h.client, { controlTaskQueue: h.controlQueue, operatorKey: operatorSeed });
  const { token } = await admin.create({ name, pool, labels: prefix.labels, settings: { slots: 2 }, by: 'test' });
  const proc = startRunnerProcess({
    address: h.address,
    name,
    pool,
    dataDir: dir,
    token,
    env: { RUNFLEET_ALLOW_PLAINTEXT: '1' },
  });
  await until('the runner registered', () => proc.output().includes('registered with the fleet'), {
    timeoutMs: 60_000,
    detail: () => proc.output(),
  });
  return { name, pool, dir, proc };
}

/** A valid Ed25519 signer (a seed, as identity.json keeps one) that is no registered runner's. */
export function strangerSigner(): RunnerSigner {
  const seed = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }).d as string;
  return createRunnerSigner(Buffer.from(seed, 'base64url').toString('base64'));
}
