/**
 * `tsx scripts/ensure-podman.ts`: installs Podman (the Docker-API engine the docker driver's
 * tests use) when missing, writes .tools/podman/containers.conf and builds the busybox task image.
 * Progress goes to stderr; stdout gets one line saying what it did.
 */
import path from 'node:path';
import { RunfleetError } from '../src/errors';
import { ensurePodman } from '../test/helpers/podman';

try {
  const setup = ensurePodman({
    projectRoot: path.resolve(__dirname, '..'),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${setup.summary}\n`);
} catch (err) {
  if (err instanceof RunfleetError) process.stderr.write(`ensure-podman: ${err.message}\n`);
  else console.error(err);
  process.exitCode = 1;
}
