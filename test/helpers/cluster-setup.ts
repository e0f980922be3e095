/**
 * The cluster tier's global setup: a fresh Temporal service (four processes of the real server on
 * a PostgreSQL of their own, src/server/cluster.ts) for the whole tier, built with Go and
 * installed with apt on a bare machine. Its address reaches the test files as `temporalAddress`,
 * so the integration files of the tier run unchanged against it. If it cannot start, setup
 * throws: the tier fails, naming the part that did not come up.
 */
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { Cluster, clusterHttpAddress } from '../../src/server/cluster';
import { testOperator } from './operator-key';

const projectRoot = path.resolve(__dirname, '..', '..');
/** Where a test tier's own cluster lives; destroyed before and after the tier. */
export const TEST_CLUSTER_DIR = path.join(projectRoot, '.runfleet', 'test', 'cluster');

let cluster: Cluster | undefined;

export async function setup(project: TestProject): Promise<void> {
  testOperator();
  cluster = new Cluster({
    projectRoot,
    stateDir: TEST_CLUSTER_DIR,
    port: 0,
    pgPort: 0,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  await cluster.destroy(); // a tier killed half-way left its processes and data
  const started = Date.now();
  const info = await cluster.start();
  process.stderr.write(`cluster tier: Temporal service at ${info.address}, up in ${Date.now() - started} ms\n`);
  project.provide('temporalAddress', info.address);
  project.provide('temporalHttpAddress', clusterHttpAddress(info));
}

export async function teardown(): Promise<void> {
  await cluster?.destroy();
  cluster = undefined;
}
