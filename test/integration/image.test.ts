/**
 * Runfleet's image, built from the Dockerfile with Podman (on a stand-in for its base, which
 * cannot be pulled here: test/helpers/image.ts), and docker-compose.yml's Runfleet services run
 * from it as the file writes them: the one-shot keys service, a control worker and two runners,
 * each container on a host of its own (a network namespace reaching the suite's Temporal through
 * its link). Only the Temporal service differs: the suite's dev server, in a namespace of its own,
 * stands in for compose's temporalio/server.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ensureNamespace } from '../../src/server/dev-server';
import type { RunState } from '../../src/types';
import { buildRunfleetImage } from '../helpers/image';
import { createTestHost, type TestHost } from '../helpers/netns';
import { podmanConfFile, podmanEnv } from '../helpers/podman';
import { projectRoot, runfleetBin } from '../helpers/processes';
import { temporalAddress, uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

interface Service {
  image?: string;
  init?: boolean;
  user?: string;
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string | number | boolean>;
  volumes?: string[];
  healthcheck?: { test: string[] };
}

const compose = parse(readFileSync(path.join(projectRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};

function service(name: string): Service {
  const s = compose.services[name];
  if (s === undefined) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
}

const env = podmanEnv(podmanConfFile(projectRoot));
const tag = uniqueName('img').replace(/[^a-z0-9-]/g, '');
let image = '';
let namespace = '';
let keysDir = '';
const containers: string[] = [];
const hosts: TestHost[] = [];

/** A podman command, asynchronous: the test file's process stays responsive while it runs. */
function podman(args: string[], timeoutMs = 120_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('podman', args, { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, out: `${stdout}${stderr}${err && code === -1 ? err.message : ''}` });
    });
  });
}

/**
 * Compose's interpolation of what it passes on: `$$` is a literal `$`. The file uses no variables
 * of the host's (`$VAR`, `${VAR}`), so one would be a change this test must hear of.
 */
function interpolate(text: string): string {
  const host = /\$(?!\$)[{A-Za-z_]/.exec(text.replaceAll('$$', ''));
  if (host) throw new Error(`docker-compose.yml interpolates a host variable (${host[0]}...) in ${text}`);
  return text.replaceAll('$$', '$');
}

/** `podman run` args for a compose service as written, but for Temporal's address and namespace. */
function runArgs(name: string, s: Service, host: TestHost, hostname: string): string[] {
  const args = ['--name', `${tag}-${hostname}`, '--hostname', hostname, '--network', `ns:/run/netns/${host.name}`];
  if (s.init) args.push('--init');
  if (s.user !== undefined) args.push('--user', s.user);
  if (s.entrypoint !== undefined) args.push('--entrypoint', JSON.stringify(s.entrypoint.map(interpolate)));
  for (const volume of s.volumes ?? []) {
    // The named volume `runfleet-keys` is a host dir here; the container path and mode as written.
    const [source, ...rest] = volume.split(':');
    expect(source, `${name}: volume ${volume}`).toBe('runfleet-keys');
    args.push('-v', [keysDir, ...rest].join(':'));
  }
  const environment = {
    ...s.environment,
    TEMPORAL_ADDRESS: host.temporalAddress,
    TEMPORAL_NAMESPACE: namespace,
  };
  for (const [k, v] of Object.entries(environment)) args.push('-e', `${k}=${interpolate(String(v))}`);
  return [...args, image, ...(s.command ?? []).map(interpolate)];
}

async function startService(name: string, hostname: string): Promise<string> {
  const host = await createTestHost(temporalAddress());
  hosts.push(host);
  const s = service(name);
  const started = await podman(['run', '-d', ...runArgs(name, s, host, hostname)]);
  expect(started.code, started.out).toBe(0);
  const id = `${tag}-${hostname}`;
  containers.push(id);
  return id;
}

/** The host's CLI on compose's system: its keys, its namespace, the default control queue. */
function cliEnv(keyFile: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: temporalAddress(),
    TEMPORAL_NAMESPACE: namespace,
    RUNFLEET_KEY_FILE: keyFile,
  };
  // The suite lets its own processes go without keys; this one has them and must use them.
  delete e['RUNFLEET_ALLOW_PLAINTEXT'];
  delete e['RUNFLEET_CONTROL_TASK_QUEUE'];
  return e;
}

/** The host's `runfleet` CLI (from the checkout) on compose's system. */
function cli(args: string[], keyFile: string, timeoutMs: number): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [runfleetBin, ...args],
      { cwd: projectRoot, env: cliEnv(keyFile), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out: stdout, err: stderr }),
    );
  });
}

async function logsOf(container: string): Promise<string> {
  return (await podman(['logs', container])).out;
}

beforeAll(async () => {
  // Podman's layer cache makes a rebuild of unchanged sources take seconds; a cold one, minutes.
  const built = await buildRunfleetImage({ projectRoot, log: (line) => process.stderr.write(`image: ${line}\n`) });
  image = built.tag;
  console.log(`image ${image}: ${Math.round(built.sizeBytes / 1e6)} MB`);
  namespace = uniqueName('image').replace(/[^a-zA-Z0-9-]/g, '-');
  const connection = await Connection.connect({ address: temporalAddress() });
  try {
    await ensureNamespace(connection, namespace, () => undefined);
  } finally {
    await connection.close();
  }
  keysDir = mkdtempSync(path.join(tmpdir(), 'runfleet-image-keys-'));
  // As a new named volume's root: root's, entered by all (the key files in it are 0600, the user's).
  chmodSync(keysDir, 0o755);
}, 900_000);

afterAll(async () => {
  for (const c of containers.splice(0)) await podman(['rm', '-f', '-t', '0', c]);
  for (const host of hosts.splice(0)) await host.remove();
  if (keysDir) rmSync(keysDir, { recursive: true, force: true });
});

describe('the image', () => {
  it('holds the build and the production dependencies only, read-only to the non-root user it runs as', async () => {
    const inspect = await podman(['image', 'inspect', '--format', '{{.Config.User}} {{json .Config.Cmd}}', image]);
    expect(inspect.out.trim()).toBe('node ["node","bin/runfleet","worker"]');
    const probe = `
      const fs = require('node:fs');
      const scoped = (d) => d.startsWith('@') ? fs.readdirSync('node_modules/' + d).map((n) => d + '/' + n) : [d];
      const modules = fs.readdirSync('node_modules').flatMap(scoped);
      const sources = [];
      const walk = (dir) => { for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = dir + '/' + e.name;
        if (e.isDirectory()) { if (p !== './node_modules') walk(p); }
        else if (/\\.ts$/.test(e.name) && !/\\.d\\.ts$/.test(e.name)) sources.push(p);
      } };
      walk('.');
      let writable = true;
      try { fs.writeFileSync('/app/probe', 'x'); } catch { writable = false; }
      console.log(JSON.stringify({
        uid: process.getuid(), modules, sources, writable, top: fs.readdirSync('.').sort(),
        bundle: fs.existsSync('dist/workflow-bundle.js'),
        releases: fs.readdirSync('node_modules/@temporalio/core-bridge/releases'),
      }));`;
    const r = await podman(['run', '--rm', '--network', 'none', image, 'node', '-e', probe]);
    expect(r.code, r.out).toBe(0);
    const facts = JSON.parse(r.out.trim().split('\n').pop() ?? '{}') as {
      uid: number;
      modules: string[];
      sources: string[];
      writable: boolean;
      top: string[];
      bundle: boolean;
      releases: string[];
    };
    expect(facts.uid).toBe(1000);
    expect(facts.writable).toBe(false);
    expect(facts.top).toEqual(['bin', 'dist', 'node_modules', 'package.json']);
    expect(facts.sources).toEqual([]);
    expect(facts.bundle).toBe(true);
    const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    for (const dep of Object.keys(pkg.dependencies)) expect(facts.modules).toContain(dep);
    // What the lock marks dev-only (typescript, vitest, eslint, tsx and theirs) is not there.
    const lock = JSON.parse(readFileSync(path.join(projectRoot, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = Object.entries(lock.packages)
      .filter(([p, entry]) => entry.dev === true && /^node_modules\/(@[^/]+\/)?[^/]+$/.test(p))
      .map(([p]) => p.slice('node_modules/'.length));
    expect(devOnly).toEqual(expect.arrayContaining(['typescript', 'vitest', 'tsx', 'eslint']));
    expect(facts.modules.filter((m) => devOnly.includes(m))).toEqual([]);
    expect(facts.releases).toEqual([`${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-unknown-linux-gnu`]);
    const help = await podman(['run', '--rm', '--network', 'none', image, 'node', 'bin/runfleet', '--help']);
    expect(help.code, help.out).toBe(0);
    expect(help.out).toContain('Usage: runfleet');
  });

  it("runs docker-compose.yml's keys service, control worker and two runners as written: an encrypted run succeeds on both runners", async () => {
    // The one-shot keys service, then the same again: it keeps the keys it made.
    for (const round of [1, 2]) {
      const host = await createTestHost(temporalAddress());
      hosts.push(host);
      const r = await podman([
        'run',
        '--rm',
        ...runArgs('runfleet-keys', service('runfleet-keys'), host, `keys-${round}`),
      ]);
      expect(r.code, r.out).toBe(0);
    }
    const keyFile = path.join(keysDir, 'runfleet.keys');
    expect(existsSync(keyFile)).toBe(true);
    expect(existsSync(path.join(keysDir, 'operator.key'))).toBe(true);

    const worker = await startService('worker', 'worker-1');
    const runners = [await startService('runner', `${tag}-r1`), await startService('runner', `${tag}-r2`)];
    // Each container's health check as compose runs it, until it says ready.
    const probe = service('worker').healthcheck?.test ?? [];
    expect(probe[0]).toBe('CMD');
    for (const c of [worker, ...runners]) {
      let lastProbe = '';
      const ready = until(
        `${c} ready by its health check`,
        async () => {
          const checked = await podman(['exec', c, ...probe.slice(1)], 30_000);
          if (checked.code === 0) return true;
          lastProbe = `exit ${checked.code}: ${checked.out}`;
          const state = (await podman(['inspect', '--format', '{{.State.Status}}', c])).out.trim();
          if (state !== 'running') throw new Error(`${c} is ${state}:\n${(await logsOf(c)).slice(-3000)}`);
          return false;
        },
        { timeoutMs: 180_000, everyMs: 1_000 },
      );
      await ready.catch(async (err: Error) => {
        throw new Error(
          `${err.message}\nthe last check: ${lastProbe}\n${c}'s output:\n${(await logsOf(c)).slice(-3000)}`,
        );
      });
    }

    const marker = `image-${tag}`;
    const file = path.join(keysDir, 'run.json');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'from the image',
        group: '/test/image',
        // Twice a runner's slots (4 by default): one runner cannot hold them all, so both run some.
        tasks: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((name) => ({
          name,
          pool: 'default',
          steps: [`echo ${marker} ${name} on $(hostname) as $(id -u)`, 'sleep 2'],
        })),
      }),
    );
    const submit = await cli(['run', 'submit', file, '--wait', '--json'], keyFile, 240_000);
    const context = async () =>
      `${submit.err}\n${(await Promise.all([worker, ...runners].map(async (c) => `${c}:\n${(await logsOf(c)).slice(-2000)}`))).join('\n')}`;
    if (submit.code !== 0) expect.fail(`run submit exited ${submit.code}:\n${await context()}`);
    const state = JSON.parse(submit.out) as RunState;
    if (state.result !== 'success') expect.fail(`the run ended ${state.result}: ${submit.out}\n${await context()}`);
    const ran = new Set(Object.values(state.tasks).map((t) => t.runner));
    expect(ran).toEqual(new Set(runners.map((c) => c.slice(tag.length + 1))));

    // Payloads reached Temporal encrypted: the raw history has the marker nowhere.
    const connection = await Connection.connect({ address: temporalAddress() });
    try {
      const history = await connection.workflowService.getWorkflowExecutionHistory({
        namespace,
        execution: { workflowId: state.id },
      });
      const started = history.history?.events?.[0]?.workflowExecutionStartedEventAttributes;
      const encoding = started?.input?.payloads?.[0]?.metadata?.['encoding'];
      expect(Buffer.from(encoding ?? []).toString()).toBe('binary/encrypted');
      expect(JSON.stringify(history.toJSON())).not.toContain(marker);
    } finally {
      await connection.close();
    }

    // A runner's task log, read back through the CLI with the keys: the task ran as the image's user.
    const logs = await cli(['run', 'logs', state.id, 'a'], keyFile, 60_000);
    expect(logs.out, logs.err).toMatch(new RegExp(`${marker} a on ${tag}-r[12] as 1000`));

    // A stop reaches node through compose's init: each container ends cleanly.
    for (const c of [...runners, worker]) {
      const stopped = await podman(['stop', '-t', '30', c], 60_000);
      expect(stopped.code, stopped.out).toBe(0);
      const code = (await podman(['inspect', '--format', '{{.State.ExitCode}}', c])).out.trim();
      expect(code, (await logsOf(c)).slice(-2000)).toBe('0');
    }
  }, 600_000);
});
