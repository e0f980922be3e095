/**
 * A stand-in for a runner process, for tests that kill it with SIGKILL mid-task: runs one task
 * with the driver named in argv[2] and prints the handle as one JSON line when the task starts.
 * `tsx test/helpers/driver-child.ts docker '<DriverRun as JSON, without signal>' <socketPath>`
 * `tsx test/helpers/driver-child.ts process '<DriverRun as JSON, without signal>' [<native supervisor>|-]`
 * `tsx test/helpers/driver-child.ts kubernetes '<DriverRun as JSON, without signal>' <kubeconfig> <namespace>`
 */
import type { DriverRun } from '../../src/runner/driver';
import { createDockerDriver, DEFAULT_CONTAINER_POLICY } from '../../src/runner/docker-driver';
import { createKubernetesDriver } from '../../src/runner/kubernetes-driver';
import { createProcessDriver } from '../../src/runner/process-driver';

async function main(): Promise<void> {
  const [kind, json, socketPath, namespace] = process.argv.slice(2);
  const req = JSON.parse(json ?? '{}') as Omit<DriverRun, 'signal'>;
  const driver =
    kind === 'docker'
      ? createDockerDriver({ socketPath: socketPath ?? '', runner: req.labels.runner, pool: req.labels.pool })
      : kind === 'kubernetes'
        ? createKubernetesDriver({
            ...(socketPath ? { kubeconfig: socketPath } : {}),
            runner: req.labels.runner,
            pool: req.labels.pool,
            container: DEFAULT_CONTAINER_POLICY,
            policy: { namespace: namespace ?? 'default', nodeSelector: {}, serviceAccounts: [], imagePullSecrets: [] },
          })
        : createProcessDriver(socketPath ? { supervisor: socketPath === '-' ? null : socketPath } : {});
  const result = await driver.run({
    ...req,
    signal: new AbortController().signal,
    onStarted: (handle) => process.stdout.write(`${JSON.stringify({ handle })}\n`),
  });
  process.stdout.write(`${JSON.stringify({ result })}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
