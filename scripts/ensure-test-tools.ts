/**
 * `tsx scripts/ensure-test-tools.ts`: builds and installs what only the test tiers run, before
 * any test starts (scripts/verify), so a cold build never competes with timing-sensitive tests:
 * Temporal as a service (the server and its SQL tool, built with Go; PostgreSQL, with apt), the
 * OpenTelemetry Collector (Go), the container registry (Debian's package) and a one-node
 * Kubernetes (API server, scheduler and kubelet built with Go; etcd and containerd with apt;
 * test/helpers/kubernetes.ts), and the stand-in for the image's base (debootstrap and Node's
 * binary; test/helpers/image.ts). Each is cached
 * under .tools; a second run takes seconds. Progress on stderr.
 */
import path from 'node:path';
import { RunfleetError } from '../src/errors';
import { ensurePostgres, ensureServiceBinaries } from '../src/server/cluster';
import { ensureCollector } from '../test/helpers/otel-collector';
import { ensureNodeBaseImage } from '../test/helpers/image';
import { ensureKubernetesTools } from '../test/helpers/kubernetes';
import { ensureRegistry } from '../test/helpers/registry';

async function main(): Promise<void> {
  const projectRoot = path.resolve(__dirname, '..');
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const timed = async (what: string, fn: () => unknown): Promise<void> => {
    const started = Date.now();
    const result = await fn();
    log(
      `ensure-test-tools: ${what}: ${typeof result === 'string' ? result : 'ready'} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
  };
  await timed('Temporal server and SQL tool', async () => (await ensureServiceBinaries({ projectRoot, log })).server);
  await timed('PostgreSQL', () => ensurePostgres(log).bin);
  await timed('OpenTelemetry Collector', () => ensureCollector(projectRoot, log));
  await timed('container registry', () => ensureRegistry(projectRoot, log));
  await timed('Kubernetes', () => ensureKubernetesTools(projectRoot, log).bin['kube-apiserver']);
  await timed("the image's base", () => ensureNodeBaseImage({ projectRoot, log }));
}

main().catch((err: unknown) => {
  if (err instanceof RunfleetError) console.error(`ensure-test-tools: ${err.message}`);
  else console.error(err);
  process.exitCode = 1;
});
