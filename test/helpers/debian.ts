/**
 * A Debian package's files without installing it (no service, no system user): `apt-get download`
 * and `dpkg -x` into `<projectRoot>/.tools/<dir>`, once. For the test tiers' real components that
 * are one binary (Prometheus, the container registry).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RunfleetError } from '../../src/errors';

export interface UnpackOptions {
  projectRoot: string;
  /** The Debian package. */
  pkg: string;
  /** Where under `.tools` it is unpacked. */
  dir: string;
  /** The file that must be there afterwards, relative to the unpacked root (`usr/bin/prometheus`). */
  binary: string;
  log?: (line: string) => void;
}

/** The path of `binary`, unpacked from the package when it is not there yet. */
export function unpackDebianPackage(opts: UnpackOptions): string {
  const root = path.join(opts.projectRoot, '.tools', opts.dir);
  const binary = path.join(root, opts.binary);
  if (existsSync(binary)) return binary;
  const log = opts.log ?? (() => undefined);
  const unavailable = (message: string) => new RunfleetError('ComponentUnavailable', `${opts.pkg}: ${message}`);
  const download = mkdtempSync(path.join(tmpdir(), `runfleet-${opts.pkg}-`));
  try {
    log(`downloading Debian's ${opts.pkg} package (apt-get download)`);
    if (run('apt-get', ['download', opts.pkg], download) !== null) {
      // A bare machine has no package lists yet.
      log('apt-get download failed; running apt-get update and trying again');
      const updated = run('apt-get', ['update'], download);
      if (updated !== null) throw unavailable(`apt-get update failed: ${updated}`);
      const again = run('apt-get', ['download', opts.pkg], download);
      if (again !== null) throw unavailable(`apt-get download ${opts.pkg} failed: ${again}`);
    }
    const deb = readdirSync(download).find((f) => f.endsWith('.deb'));
    if (!deb) throw unavailable(`apt-get download left no .deb in ${download}`);
    mkdirSync(root, { recursive: true });
    const unpacked = run('dpkg', ['-x', path.join(download, deb), root], download);
    if (unpacked !== null) throw unavailable(`dpkg -x ${deb} failed: ${unpacked}`);
  } finally {
    rmSync(download, { recursive: true, force: true });
  }
  if (!existsSync(binary)) throw unavailable(`the package unpacked, but ${binary} is missing`);
  return binary;
}

/** null when the command succeeded, else the tail of its output. */
function run(cmd: string, args: string[], cwd: string): string | null {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 300_000 });
  if (r.status === 0) return null;
  return (r.error?.message ?? `${r.stderr ?? ''}${r.stdout ?? ''}`).trim().split('\n').slice(-5).join('\n');
}
