/**
 * A Podman API service for one test file, on a socket in a temporary dir. Podman is installed
 * and its busybox image built when missing (`ensurePodman`); if that or the service fails, the
 * error says why and the tests fail (never skip).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { startPodmanService, type PodmanService } from '../../src/server/podman';

export { BUSYBOX_IMAGE } from '../../src/server/podman';

export interface TestPodman {
  socketPath: string;
  docker: Docker;
  /** A temporary dir for the file's workspaces, logs and session dirs. */
  dir: string;
  stop(): Promise<void>;
}

export async function startTestPodman(): Promise<TestPodman> {
  // Short: a unix socket path must fit in 108 bytes.
  const dir = mkdtempSync(join(tmpdir(), 'rf-podman-'));
  let service: PodmanService;
  try {
    service = await startPodmanService({ socketPath: join(dir, 'podman.sock'), logFile: join(dir, 'service.log') });
  } catch (err) {
    throw new Error(`Podman is required for the docker driver tests and could not start: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return {
    socketPath: service.socketPath,
    docker: new Docker({ socketPath: service.socketPath }),
    dir,
    async stop() {
      await service.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
