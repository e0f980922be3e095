/**
 * A stand-in for a runner process, for tests that kill it with SIGKILL mid-task: runs one task
 * with the driver named in argv[2] and prints the handle as one JSON line when the task starts.
 * `tsx test/helpers/driver-child.ts <process|docker> '<DriverRun as JSON, without signal>' [socketPath]`
 */
import type { DriverRun } from '../../src/runner/driver';
import { createDockerDriver } from '../../src/runner/docker-driver';
import { createProcessDriver } from '../../src/runner/process-driver';

async function main(): Promise<void> {
  const [kind, json, socketPath] = process.argv.slice(2);
  const req = JSON.parse(json ?? '{}') as Omit<DriverRun, 'signal'>;
  const driver =
    kind === 'docker'
      ? createDockerDriver({ socketPath: socketPath ?? '', runner: req.labels.runner, pool: req.labels.pool })
      : createProcessDriver();
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
