/**
 * Runfleet's image (the Dockerfile), built here with Podman. No image can be pulled on this
 * machine, so the Dockerfile's base (`node:20-bookworm-slim`) is stood in for by one made from
 * the same parts: Debian bookworm (debootstrap, minbase) with Node.js's own release binary and
 * npm (both from the npm registry), and the `node` user (uid 1000) the public image has.
 *
 * The stand-in's root filesystem is cached as an archive under `.tools/image/`, so a machine
 * runs debootstrap once; `podman import` makes the base again from it when the engine lacks it.
 * Used by `scripts/image`, by `scripts/ensure-test-tools.ts` (the base, before any test) and by
 * test/integration/image.test.ts (the build).
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RunfleetError } from '../../src/errors';
import { ensurePodman, onPath, podmanEnv } from './podman';

/** Node's version in the base: this machine's, which is what the tests ran on. */
export const NODE_VERSION = process.versions.node;
/** Node's release binary for this platform, as an npm package. */
const NODE_PACKAGE = `node-linux-${process.arch}`;
/** The npm that Node.js 20's later releases ship with. */
export const NPM_VERSION = '10.8.2';
/** The stand-in for `node:20-bookworm-slim`. */
export const NODE_BASE_IMAGE = `localhost/runfleet-node:${NODE_VERSION}-bookworm-slim`;
export const RUNFLEET_IMAGE = 'localhost/runfleet:dev';

const DEBIAN_MIRROR = 'http://deb.debian.org/debian';

export interface ImageOptions {
  projectRoot: string;
  log?: (line: string) => void;
}

function unavailable(message: string): RunfleetError {
  return new RunfleetError('ComponentUnavailable', `image: ${message}`);
}

/** Runs a command; null when it succeeded, else the tail of its output. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string | null {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: 900_000,
    maxBuffer: 64 * 1024 * 1024,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    env: opts.env ?? process.env,
  });
  if (r.status === 0) return null;
  return (r.error?.message ?? `${r.stderr ?? ''}${r.stdout ?? ''}`).trim().split('\n').slice(-15).join('\n');
}

function ensureOk(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  const failed = run(cmd, args, opts);
  if (failed !== null) throw unavailable(`${cmd} ${args.slice(0, 3).join(' ')} failed: ${failed}`);
}

/** `.tools/image/node-<version>-bookworm.tar`: the stand-in's root filesystem. */
export function baseArchive(projectRoot: string): string {
  return path.join(projectRoot, '.tools', 'image', `node-${NODE_VERSION}-npm-${NPM_VERSION}-bookworm.tar`);
}

/** Makes the stand-in base when the engine lacks it; returns its reference. */
export function ensureNodeBaseImage(opts: ImageOptions): string {
  const log = opts.log ?? (() => undefined);
  const { confFile } = ensurePodman({ projectRoot: opts.projectRoot, log });
  const env = podmanEnv(confFile);
  if (run('podman', ['image', 'exists', NODE_BASE_IMAGE], { env }) === null) return NODE_BASE_IMAGE;
  const archive = baseArchive(opts.projectRoot);
  if (!existsSync(archive)) buildBaseArchive(archive, log);
  log(`importing ${NODE_BASE_IMAGE} from ${path.relative(opts.projectRoot, archive)}`);
  ensureOk(
    'podman',
    [
      'import',
      '--change',
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--change',
      `ENV NODE_VERSION=${NODE_VERSION}`,
      '--change',
      'CMD ["node"]',
      archive,
      NODE_BASE_IMAGE,
    ],
    { env },
  );
  return NODE_BASE_IMAGE;
}

function buildBaseArchive(archive: string, log: (line: string) => void): void {
  if (!onPath('debootstrap')) {
    log('installing debootstrap with apt-get');
    const pkgs = ['install', '-y', '--no-install-recommends', 'debootstrap'];
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    if (run('apt-get', pkgs, { env }) !== null) {
      ensureOk('apt-get', ['update'], { env });
      ensureOk('apt-get', pkgs, { env });
    }
  }
  const work = mkdtempSync(path.join(tmpdir(), 'runfleet-base-'));
  try {
    const rootfs = path.join(work, 'rootfs');
    log(`debootstrap --variant=minbase bookworm (${DEBIAN_MIRROR})`);
    ensureOk('debootstrap', ['--variant=minbase', 'bookworm', rootfs, DEBIAN_MIRROR]);
    // What the slim images leave out: package caches and lists, docs, man pages.
    for (const dir of ['var/cache/apt/archives', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man']) {
      const full = path.join(rootfs, dir);
      for (const entry of existsSync(full) ? readdirSync(full) : []) {
        if (entry === 'partial' || entry === 'lock') continue;
        rmSync(path.join(full, entry), { recursive: true, force: true });
      }
    }
    log(`node ${NODE_VERSION} (${NODE_PACKAGE}) and npm ${NPM_VERSION} from the npm registry`);
    const packs = path.join(work, 'packs');
    mkdirSync(packs);
    ensureOk('npm', ['pack', '--silent', `${NODE_PACKAGE}@${NODE_VERSION}`, `npm@${NPM_VERSION}`], { cwd: packs });
    const nodeDir = path.join(work, 'node');
    mkdirSync(nodeDir);
    ensureOk('tar', ['-xzf', path.join(packs, `${NODE_PACKAGE}-${NODE_VERSION}.tgz`), '-C', nodeDir]);
    ensureOk('install', ['-m', '0755', path.join(nodeDir, 'package', 'bin', 'node'), `${rootfs}/usr/local/bin/node`]);
    const npmDir = path.join(rootfs, 'usr', 'local', 'lib', 'node_modules', 'npm');
    mkdirSync(npmDir, { recursive: true });
    ensureOk('tar', ['-xzf', path.join(packs, `npm-${NPM_VERSION}.tgz`), '-C', npmDir, '--strip-components=1']);
    ensureOk('ln', ['-s', '../lib/node_modules/npm/bin/npm-cli.js', `${rootfs}/usr/local/bin/npm`]);
    ensureOk('ln', ['-s', '../lib/node_modules/npm/bin/npx-cli.js', `${rootfs}/usr/local/bin/npx`]);
    // The public image's user: uid and gid 1000, home /home/node.
    ensureOk('chroot', [rootfs, 'groupadd', '--gid', '1000', 'node']);
    ensureOk('chroot', [
      rootfs,
      'useradd',
      '--uid',
      '1000',
      '--gid',
      'node',
      '--shell',
      '/bin/bash',
      '--create-home',
      'node',
    ]);
    const version = spawnSync('chroot', [rootfs, '/usr/local/bin/node', '--version'], { encoding: 'utf8' });
    if (version.stdout.trim() !== `v${NODE_VERSION}`)
      throw unavailable(`node in the base says ${JSON.stringify(version.stdout + version.stderr)}`);
    mkdirSync(path.dirname(archive), { recursive: true });
    const partial = `${archive}.partial`;
    ensureOk('tar', ['--numeric-owner', '-C', rootfs, '-cf', partial, '.']);
    renameSync(partial, archive);
    log(`base archive ${path.basename(archive)}: ${Math.round(statSync(archive).size / 1e6)} MB`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export interface BuildImageOptions extends ImageOptions {
  /** Default RUNFLEET_IMAGE. */
  tag?: string;
}

/**
 * Builds the Dockerfile on the stand-in base with Podman (`--network host`: the build stage runs
 * `npm install`). Behind a TLS-intercepting proxy (NODE_EXTRA_CA_CERTS set here), the build stage
 * gets the same CA bundle, mounted read-only; the image does not keep it.
 */
export async function buildRunfleetImage(opts: BuildImageOptions): Promise<{ tag: string; sizeBytes: number }> {
  const log = opts.log ?? (() => undefined);
  const base = ensureNodeBaseImage(opts);
  const { confFile } = ensurePodman({ projectRoot: opts.projectRoot });
  const env = podmanEnv(confFile);
  const tag = opts.tag ?? RUNFLEET_IMAGE;
  const ca = process.env.NODE_EXTRA_CA_CERTS;
  const caArgs =
    ca && existsSync(ca)
      ? ['-v', `${ca}:/run/build-ca.crt:ro`, '--build-arg', 'NODE_EXTRA_CA_CERTS=/run/build-ca.crt']
      : [];
  log(`podman build -t ${tag} (base ${base})`);
  // Asynchronous: a cold build takes minutes, and a test file's process must stay responsive.
  const args = [
    'build',
    '--network',
    'host',
    '--build-arg',
    `NODE_IMAGE=${base}`,
    ...caArgs,
    '-t',
    tag,
    opts.projectRoot,
  ];
  const built = await new Promise<string | null>((resolve) => {
    execFile('podman', args, { env, timeout: 900_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve(err ? `${err.message}\n${stdout}${stderr}`.trim().split('\n').slice(-15).join('\n') : null),
    );
  });
  if (built !== null) throw unavailable(`podman build failed: ${built}`);
  const size = spawnSync('podman', ['image', 'inspect', '--format', '{{.Size}}', tag], { encoding: 'utf8', env });
  return { tag, sizeBytes: Number(size.stdout.trim()) };
}
