/**
 * One real Kubernetes for a test file (test/helpers/kubernetes.ts): started in `beforeAll`, with a
 * namespace that enforces the restricted Pod Security Standard (so every pod the driver makes is
 * checked by the API server's own admission) and a runner's kubeconfig that may only run pods
 * there (docs/kubernetes.md's Role). If the cluster cannot start, the test file fails saying why.
 */
import path from 'node:path';
import { KubernetesCluster, type KubernetesClusterInfo } from './kubernetes';

/** Not from ./processes: benchmarks use this file too, outside vitest. */
const projectRoot = path.resolve(__dirname, '..', '..');

export interface TestKubernetes {
  cluster: KubernetesCluster;
  info: KubernetesClusterInfo;
  /** Enforces `restricted`; the runner's kubeconfig may run pods here only. */
  namespace: string;
  /** A service-account kubeconfig with the runner Role in `namespace`. */
  runnerKubeconfig: string;
  /** Milliseconds from nothing to a Ready node. */
  startMs: number;
}

export async function startTestKubernetes(namespace = 'runfleet-test'): Promise<TestKubernetes> {
  const cluster = new KubernetesCluster({
    projectRoot,
    stateDir: path.join(projectRoot, '.runfleet', 'test', 'kubernetes'),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const started = Date.now();
  const info = await cluster.start();
  const startMs = Date.now() - started;
  await cluster.createNamespace(namespace, {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/enforce-version': 'latest',
  });
  const runnerKubeconfig = await cluster.runnerKubeconfig(namespace, 'runfleet-runner');
  return { cluster, info, namespace, runnerKubeconfig, startMs };
}
