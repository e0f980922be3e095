/**
 * A real container registry for the image-pull tests: Debian's `docker-registry` package (the
 * CNCF distribution registry 2.8), unpacked into `.tools/docker-registry` and run on loopback
 * with htpasswd authentication (bcrypt, made with Python's crypt), storage in a temporary dir.
 * Plain HTTP: a podman that pulls from it is told it is insecure through a registries.conf.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RunfleetError } from '../../src/errors';
import { freePort } from '../../src/server/ports';
import { unpackDebianPackage } from './debian';
import { ensurePodman, podmanEnv } from './podman';
import { until } from './until';

export interface TestRegistry {
  /** `127.0.0.1:PORT`, the first component of an image reference. */
  host: string;
  username: string;
  password: string;
  /** A registries.conf that marks this registry insecure (plain HTTP), for podman. */
  registriesConf: string;
  output(): string;
  stop(): Promise<void>;
}

export function ensureRegistry(projectRoot: string, log?: (line: string) => void): string {
  return unpackDebianPackage({
    projectRoot,
    pkg: 'docker-registry',
    dir: 'docker-registry',
    binary: 'usr/bin/docker-registry',
    ...(log ? { log } : {}),
  });
}

export async function startRegistry(projectRoot: string): Promise<TestRegistry> {
  const binary = ensureRegistry(projectRoot, (l) => process.stderr.write(`${l}\n`));
  const dir = mkdtempSync(path.join(tmpdir(), 'runfleet-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const username = 'runfleet';
  const password = `pw-${process.pid}-${port}`;
  const hash = spawnSync(
    'python3',
    ['-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))', password],
    { encoding: 'utf8' },
  );
  if (hash.status !== 0 || !hash.stdout.startsWith('$2')) {
    throw new RunfleetError(
      'ComponentUnavailable',
      `registry: could not make a bcrypt hash with python3: ${hash.stderr}`,
    );
  }
  writeFileSync(path.join(dir, 'htpasswd'), `${username}:${hash.stdout.trim()}\n`);
  const config = path.join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      'http:',
      `  addr: ${host}`,
      `  secret: ${password}`,
      'auth:',
      '  htpasswd:',
      '    realm: runfleet-test',
      `    path: ${path.join(dir, 'htpasswd')}`,
      '',
    ].join('\n'),
  );
  const registriesConf = path.join(dir, 'registries.conf');
  writeFileSync(registriesConf, `[[registry]]\nlocation = "${host}"\ninsecure = true\n`);
  const logFile = path.join(dir, 'registry.log');
  const out = openSync(logFile, 'a');
  const child: ChildProcess = spawn(binary, ['serve', config], { stdio: ['ignore', out, out] });
  closeSync(out);
  const output = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await until(
    'the registry answering',
    async () => {
      if (child.exitCode !== null) throw new Error(`the registry exited:\n${output()}`);
      // 401 without credentials: it is up and asks for them.
      return (await fetch(`http://${host}/v2/`)).status === 401;
    },
    { timeoutMs: 30_000, detail: output },
  );
  return {
    host,
    username,
    password,
    registriesConf,
    output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `podman push` of a local image to the registry as `image` (`host/path:tag`), with its credentials. */
export function pushImage(projectRoot: string, registry: TestRegistry, source: string, image: string): void {
  const { confFile } = ensurePodman({ projectRoot });
  const r = spawnSync(
    'podman',
    ['push', '--tls-verify=false', '--creds', `${registry.username}:${registry.password}`, source, `docker://${image}`],
    { env: podmanEnv(confFile), encoding: 'utf8', timeout: 120_000 },
  );
  if (r.status !== 0) throw new Error(`podman push to ${image} failed: ${r.stderr}\n${registry.output()}`);
}
