/**
 * `scripts/kube build|start|stop|status`: a real one-node Kubernetes on this machine for the
 * kubernetes driver (test/helpers/kubernetes.ts): built with Go and installed with apt when
 * missing, state in `.runfleet/kubernetes` (RUNFLEET_KUBE_DIR). `start` prints the path of the
 * cluster-admin kubeconfig; the processes keep running until `stop`.
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import { RunfleetError } from '../src/errors';
import { ensureKubernetesTools, KubernetesCluster } from '../test/helpers/kubernetes';

const USAGE = 'usage: scripts/kube build | start | stop | status';

async function main(argv: string[]): Promise<void> {
  const projectRoot = path.resolve(__dirname, '..');
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const dir = process.env['RUNFLEET_KUBE_DIR'];
  const stateDir =
    dir !== undefined && dir !== '' ? path.resolve(dir) : path.join(projectRoot, '.runfleet', 'kubernetes');
  const cluster = new KubernetesCluster({ projectRoot, stateDir, log });
  switch (argv[0]) {
    case 'build': {
      const tools = ensureKubernetesTools(projectRoot, log);
      console.log([...Object.values(tools.bin), ...tools.images].join('\n'));
      return;
    }
    case 'start': {
      const info = await cluster.start();
      console.log(info.kubeconfig);
      return;
    }
    case 'stop':
      return cluster.stop();
    case 'status': {
      const kubeconfig = path.join(stateDir, 'etc', 'admin.kubeconfig');
      console.log(existsSync(kubeconfig) ? `kubeconfig: ${kubeconfig}` : 'not started');
      return;
    }
    default:
      throw new RunfleetError('InvalidArgument', USAGE);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof RunfleetError) console.error(err.message);
  else console.error(err);
  process.exitCode = 1;
});
