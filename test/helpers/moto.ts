/**
 * A local EC2 API endpoint for tests, benchmarks and development (`scripts/ensure-moto.ts`): moto in server mode, installed
 * into a project-local virtualenv (`<projectRoot>/.tools/moto-venv`) and run as a child process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RunfleetError } from '../../src/errors';
import { freePort } from '../../src/server/ports';

/** Pinned: moto's EC2 responses change between releases and the tests assert on them. */
export const MOTO_VERSION = '5.2.1';

export interface EnsureMotoOptions {
  projectRoot: string;
  log?: (line: string) => void;
}

/** The `moto_server` executable, installing moto into the project's virtualenv when missing. */
export function ensureMoto(opts: EnsureMotoOptions): string {
  const venv = path.join(opts.projectRoot, '.tools', 'moto-venv');
  const server = path.join(venv, 'bin', 'moto_server');
  const python = path.join(venv, 'bin', 'python3');
  if (existsSync(server) && installedVersion(python) === MOTO_VERSION) return server;
  const log = opts.log ?? (() => undefined);
  if (!existsSync(python)) {
    log(`creating a Python virtualenv for moto in ${venv}`);
    run('python3', ['-m', 'venv', venv]);
  }
  log(`installing moto[server]==${MOTO_VERSION} (a minute the first time)`);
  run(path.join(venv, 'bin', 'pip'), ['install', '--quiet', `moto[server]==${MOTO_VERSION}`]);
  if (!existsSync(server)) throw new RunfleetError('ComponentUnavailable', `moto installed but ${server} is missing`);
  return server;
}

function installedVersion(python: string): string | null {
  const r = spawnSync(python, ['-c', 'import importlib.metadata as m; print(m.version("moto"))'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function run(cmd: string, args: string[]): void {
  // pip on a 2-core machine with a cold cache: minutes, not hours.
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) {
    const tail = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').slice(-10).join('\n');
    throw new RunfleetError(
      'ComponentUnavailable',
      `could not install moto (${cmd} ${args.join(' ')}): ${r.error?.message ?? tail}`,
    );
  }
}

export interface MotoServer {
  /** `http://127.0.0.1:<port>`, the endpoint for `@aws-sdk/client-ec2`. */
  endpoint: string;
  /** Forgets every resource (POST /moto-api/reset). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartMotoOptions extends EnsureMotoOptions {
  port?: number;
  /** How long to wait for the server to answer. Default 30 s (Python imports are slow on 2 cores). */
  readyTimeoutMs?: number;
}

/** Ensures moto, starts `moto_server` on a free port, and waits until it answers. */
export async function startMoto(opts: StartMotoOptions): Promise<MotoServer> {
  const binary = ensureMoto(opts);
  const port = opts.port ?? (await freePort());
  const endpoint = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(binary, ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr?.on('data', (d: Buffer) => {
    // Keep the tail only: it goes into the error when the server does not come up.
    output = (output + d.toString()).slice(-4000);
  });
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (exited !== undefined)
      throw new RunfleetError('ComponentUnavailable', `moto_server exited (${exited}) before answering:\n${output}`);
    try {
      const r = await fetch(`${endpoint}/moto-api/data.json`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new RunfleetError('ComponentUnavailable', `moto_server did not answer on ${endpoint} in time:\n${output}`);
    }
    await sleep(200);
  }
  return {
    endpoint,
    async reset() {
      const r = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!r.ok) throw new RunfleetError('Internal', `moto reset failed: HTTP ${r.status}`);
    },
    async stop() {
      if (exited !== undefined) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
