/** The drivers a runner offers, built from its configuration. */
import type { DriverName } from '../types';
import { createDockerDriver, DEFAULT_CONTAINER_POLICY, type ContainerPolicy } from './docker-driver';
import type { Driver } from './driver';
import { createKubernetesDriver, defaultNamespace, type KubernetesPolicy } from './kubernetes-driver';
import { createProcessDriver } from './process-driver';
import { loadRegistryAuth } from './registry-auth';
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
  /** `runner.registryAuthFile`: private registries' credentials for the docker driver's pulls. */
  registryAuthFile?: string;
  /** The docker driver's user, root and limits (`containerPolicy(config.runner)`). Default: the safe defaults. */
  container?: ContainerPolicy;
  /** `runner.taskUids`: the user ids process-driver tasks run as on a root runner (`task-user.ts`). */
  taskUids?: string;
  /** The kubernetes driver's credentials (a kubeconfig; none: in-cluster) and pods' policy (`kubernetesSettings`). */
  kubernetes?: { kubeconfig?: string; policy: KubernetesPolicy };
  /** Where the process driver says, once, that its tasks run as the runner's own user. */
  log?: (line: string) => void;
}): Partial<Record<DriverName, Driver>> {
  const drivers: Partial<Record<DriverName, Driver>> = {};
  for (const name of new Set(opts.names)) {
    switch (name) {
      case 'docker':
        drivers.docker = createDockerDriver({
          socketPath: opts.dockerSocket ?? DEFAULT_DOCKER_SOCKET,
          runner: opts.runner,
          pool: opts.pool,
          ...(opts.container ? { policy: opts.container } : {}),
          ...(opts.registryAuthFile ? { registryAuth: loadRegistryAuth(opts.registryAuthFile) } : {}),
        });
        break;
      case 'kubernetes':
        drivers.kubernetes = createKubernetesDriver({
          ...(opts.kubernetes?.kubeconfig ? { kubeconfig: opts.kubernetes.kubeconfig } : {}),
          runner: opts.runner,
          pool: opts.pool,
          policy: opts.kubernetes?.policy ?? {
            namespace: defaultNamespace(opts.pool),
            nodeSelector: {},
            serviceAccounts: [],
            imagePullSecrets: [],
          },
          container: opts.container ?? DEFAULT_CONTAINER_POLICY,
        });
        break;
      case 'process':
        drivers.process = createProcessDriver({
          sessionsDir: new SessionStore(opts.stateDir).root,
          ...(opts.taskUids ? { taskUids: opts.taskUids } : {}),
          ...(opts.log ? { log: opts.log } : {}),
        });
        break;
    }
  }
  return drivers;
}
