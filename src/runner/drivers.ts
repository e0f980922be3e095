/** The drivers a runner offers, built from its configuration. */
import type { DriverName } from '../types';
import { createDockerDriver } from './docker-driver';
import type { Driver } from './driver';
import { createProcessDriver } from './process-driver';
import { SessionStore } from './sessions';

/** Podman's rootful socket, the default of the docker driver. */
export const DEFAULT_DOCKER_SOCKET = '/run/podman/podman.sock';

export function createDrivers(opts: {
  names: readonly DriverName[];
  runner: string;
  pool: string;
  /** The runner's state directory (its task sessions are under `sessions/`). */
  stateDir: string;
  dockerSocket?: string;
}): Partial<Record<DriverName, Driver>> {
  const drivers: Partial<Record<DriverName, Driver>> = {};
  for (const name of new Set(opts.names)) {
    drivers[name] =
      name === 'docker'
        ? createDockerDriver({
            socketPath: opts.dockerSocket ?? DEFAULT_DOCKER_SOCKET,
            runner: opts.runner,
            pool: opts.pool,
          })
        : createProcessDriver({ sessionsDir: new SessionStore(opts.stateDir).root });
  }
  return drivers;
}
