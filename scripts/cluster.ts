/**
 * `scripts/cluster build|start|stop|destroy|status|kill <service>|start-service <service>|restart-postgres`:
 * Temporal as a service (four processes on PostgreSQL, src/server/cluster.ts) for operators and
 * the cluster test tier. State in `.runfleet/cluster` (RUNFLEET_CLUSTER_DIR); the frontend on
 * 127.0.0.1:7433 (RUNFLEET_CLUSTER_PORT), PostgreSQL on 55432 (RUNFLEET_CLUSTER_PG_PORT).
 */
import path from 'node:path';
import { RunfleetError } from '../src/errors';
import { Cluster, SERVICES, clusterHttpAddress, ensureServiceBinaries, type Service } from '../src/server/cluster';

const USAGE =
  'usage: scripts/cluster build | start | stop | destroy | status | kill <service> | start-service <service> | restart-postgres\n' +
  `  services: ${SERVICES.join(', ')}`;

function portFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new RunfleetError('InvalidArgument', `${name}=${raw} is not a port`);
  return port;
}

function service(name: string | undefined): Service {
  if (!SERVICES.includes(name as Service))
    throw new RunfleetError('InvalidArgument', `unknown service ${JSON.stringify(name)}\n${USAGE}`);
  return name as Service;
}

async function main(argv: string[]): Promise<void> {
  const projectRoot = path.resolve(__dirname, '..');
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const dir = process.env['RUNFLEET_CLUSTER_DIR'];
  const cluster = new Cluster({
    projectRoot,
    ...(dir !== undefined && dir !== '' ? { stateDir: path.resolve(dir) } : {}),
    port: portFromEnv('RUNFLEET_CLUSTER_PORT'),
    pgPort: portFromEnv('RUNFLEET_CLUSTER_PG_PORT'),
    log,
  });
  const [command, arg] = argv;
  switch (command) {
    case 'build': {
      const binaries = await ensureServiceBinaries({ projectRoot, log });
      console.log(`${binaries.server}\n${binaries.sql}`);
      return;
    }
    case 'start': {
      const info = await cluster.start();
      console.log(info.address);
      return;
    }
    case 'stop':
      return cluster.stop();
    case 'destroy':
      return cluster.destroy();
    case 'status':
      for (const row of cluster.status()) {
        console.log(row.pid === null ? `${row.name}: down` : `${row.name}: pid ${row.pid}, RSS ${row.rssMiB} MiB`);
      }
      const info = cluster.info();
      console.log(`address: ${info?.address ?? '(never started)'}`);
      if (info) console.log(`HTTP API: ${clusterHttpAddress(info)}`);
      return;
    case 'kill':
      cluster.kill(service(arg));
      return;
    case 'start-service':
      return cluster.startService(service(arg));
    case 'restart-postgres':
      return cluster.restartPostgres();
    default:
      throw new RunfleetError('InvalidArgument', USAGE);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof RunfleetError) console.error(err.message);
  else console.error(err);
  process.exitCode = 1;
});
