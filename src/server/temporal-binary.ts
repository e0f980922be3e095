/**
 * Finds, or builds, the `temporal` CLI that Runfleet's embedded mode and tests run as a dev server.
 *
 * The release downloads are not reachable from every machine Runfleet runs on, so when no suitable
 * binary exists we build the pinned CLI from Go modules (RECIPES.md: v1.5.1 is the newest tag whose
 * go.mod has no `replace` directive, which `go install pkg@version` refuses).
 */
import { execFile, spawn } from 'node:child_process';
import { access, mkdir } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { RunfleetError } from '../errors';

/** The pinned CLI release and the server it embeds. */
export const TEMPORAL_CLI_VERSION = '1.5.1';
export const TEMPORAL_SERVER_VERSION = '1.29.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

/** Where a project-local build lives, relative to the project root (git-ignored). */
export const TOOLS_BIN_DIR = path.join('.tools', 'bin');

export interface EnsureTemporalBinaryOptions {
  /** The Runfleet checkout; the binary is built into `<projectRoot>/.tools/bin`. */
  projectRoot: string;
  /** Progress lines (lookup decisions, build progress). Default: silent. */
  log?: (line: string) => void;
  /**
   * The environment to read `RUNFLEET_TEMPORAL_BIN` and `PATH` from and to run `go` with.
   * Default: `process.env` (callers at the process edge may pass a filtered copy).
   */
  env?: NodeJS.ProcessEnv;
}

/** `temporal --version` must answer quickly; a slow disk on first exec is the only reason to wait. */
const VERSION_TIMEOUT_MS = 15_000;
/** A cold `go install` downloads ~300 modules and compiles the server: several minutes on 2 cores. */
const BUILD_TIMEOUT_MS = 30 * 60_000;
/** How often to say the build is still going, so a long build does not look hung. */
const BUILD_PROGRESS_INTERVAL_MS = 30_000;

/**
 * The path of a `temporal` CLI of the pinned version. Looks in order at `RUNFLEET_TEMPORAL_BIN`,
 * `temporal` on PATH, `<projectRoot>/.tools/bin/temporal`; otherwise builds it there with Go.
 * Throws `RunfleetError('ComponentUnavailable')` saying what failed and how to fix it.
 */
export async function ensureTemporalBinary(opts: EnsureTemporalBinaryOptions): Promise<string> {
  const log = opts.log ?? (() => {});
  const env = opts.env ?? process.env;

  const override = env['RUNFLEET_TEMPORAL_BIN'];
  if (override !== undefined && override !== '') {
    const bin = path.resolve(opts.projectRoot, override);
    if (!(await isExecutable(bin))) {
      throw new RunfleetError(
        'ComponentUnavailable',
        `RUNFLEET_TEMPORAL_BIN is set to ${override}, but that is not an executable file. ` +
          `Point it at a temporal CLI v${TEMPORAL_CLI_VERSION}, or unset it to let Runfleet find or build one.`,
      );
    }
    // The operator chose this binary on purpose: use it, but say when it is not the pinned version.
    const version = await readVersion(bin);
    if (version === null || !isPinnedVersion(version)) {
      log(
        `temporal: using RUNFLEET_TEMPORAL_BIN=${bin} (${version ?? 'version unknown'}); ` +
          `Runfleet is tested with CLI ${TEMPORAL_CLI_VERSION} (server ${TEMPORAL_SERVER_VERSION})`,
      );
    }
    return bin;
  }

  for (const candidate of pathCandidates(env)) {
    if (!(await isExecutable(candidate))) continue;
    const version = await readVersion(candidate);
    if (version !== null && isPinnedVersion(version)) return candidate;
    log(`temporal: ignoring ${candidate} (${version ?? 'version unknown'}); need server ${TEMPORAL_SERVER_VERSION}`);
  }

  const binDir = path.resolve(opts.projectRoot, TOOLS_BIN_DIR);
  const local = path.join(binDir, 'temporal');
  if (await isExecutable(local)) {
    const version = await readVersion(local);
    if (version !== null && isPinnedVersion(version)) return local;
    log(`temporal: ${local} is ${version ?? 'not runnable'}; rebuilding CLI ${TEMPORAL_CLI_VERSION}`);
  }

  await buildWithGo({ binDir, env, log });
  const version = await readVersion(local);
  if (version === null || !isPinnedVersion(version)) {
    throw new RunfleetError(
      'ComponentUnavailable',
      `go install finished but ${local} reports ${JSON.stringify(version ?? 'no version')}, ` +
        `not server ${TEMPORAL_SERVER_VERSION}. Delete ${binDir} and run scripts/setup again.`,
    );
  }
  log(`temporal: built ${local} (${version})`);
  return local;
}

/**
 * True for the pinned release and for a go-built copy of it, which prints
 * `temporal version 0.0.0-DEV (Server 1.29.1, UI 2.42.1)`.
 */
export function isPinnedVersion(versionOutput: string): boolean {
  return (
    versionOutput.includes(`Server ${TEMPORAL_SERVER_VERSION}`) ||
    new RegExp(`\\bversion ${TEMPORAL_CLI_VERSION.replace(/\./g, '\\.')}\\b`).test(versionOutput)
  );
}

function pathCandidates(env: NodeJS.ProcessEnv): string[] {
  const dirs = (env['PATH'] ?? '').split(path.delimiter).filter((d) => d.length > 0);
  return [...new Set(dirs.map((d) => path.resolve(d, 'temporal')))];
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first line of `<bin> --version`, or null when it does not run. */
function readVersion(bin: string): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(bin, ['--version'], { timeout: VERSION_TIMEOUT_MS }, (err, stdout) => {
      if (err) {
        resolve(null);
        return;
      }
      resolve(stdout.trim().split('\n')[0] ?? null);
    });
  });
}

async function buildWithGo(opts: {
  binDir: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
}): Promise<void> {
  const { binDir, env, log } = opts;
  const goVersion = await new Promise<string | null>((resolve) => {
    execFile('go', ['version'], { env, timeout: VERSION_TIMEOUT_MS }, (err, stdout) =>
      resolve(err ? null : stdout.trim()),
    );
  });
  if (goVersion === null) {
    throw new RunfleetError(
      'ComponentUnavailable',
      `No temporal CLI ${TEMPORAL_CLI_VERSION} was found (RUNFLEET_TEMPORAL_BIN, PATH, ${binDir}) ` +
        `and Go is not installed to build one. Install Go 1.25 or newer (https://go.dev/dl/; an older Go ` +
        `fetches a newer toolchain itself when GOTOOLCHAIN=auto) and run scripts/setup again, or set ` +
        `RUNFLEET_TEMPORAL_BIN to an ` +
        `existing temporal CLI ${TEMPORAL_CLI_VERSION}.`,
    );
  }

  await mkdir(binDir, { recursive: true });
  const target = `${TEMPORAL_CLI_MODULE}@v${TEMPORAL_CLI_VERSION}`;
  log(`temporal: building ${target} into ${binDir} with ${goVersion} (several minutes the first time)`);

  const tail: string[] = [];
  const started = Date.now();
  const code = await new Promise<number | string>((resolve) => {
    const child = spawn('go', ['install', target], {
      env: { ...env, CGO_ENABLED: '0', GOBIN: binDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onData = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
        log(`temporal: ${line}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const progress = setInterval(() => {
      log(`temporal: still building (${Math.round((Date.now() - started) / 1000)} s)`);
    }, BUILD_PROGRESS_INTERVAL_MS);
    const deadline = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS);
    child.once('error', (err) => {
      clearInterval(progress);
      clearTimeout(deadline);
      resolve(err.message);
    });
    child.once('close', (exitCode, signal) => {
      clearInterval(progress);
      clearTimeout(deadline);
      resolve(exitCode ?? `killed by ${signal ?? 'a signal'}`);
    });
  });
  if (code === 0) return;

  const output = tail.join('\n');
  const hint = /dial tcp|proxy\.golang\.org|i\/o timeout|no such host|connection refused/i.test(output)
    ? 'The Go module proxy could not be reached: check the network, or GOPROXY / GOFLAGS.'
    : /no space left/i.test(output)
      ? 'The disk is full: free some space (Go caches live in $(go env GOMODCACHE) and $(go env GOCACHE)).'
      : /requires go >=|toolchain/i.test(output)
        ? 'This Go is too old for the module: install a newer Go, or allow GOTOOLCHAIN=auto.'
        : 'See the output above.';
  throw new RunfleetError(
    'ComponentUnavailable',
    `Building the temporal CLI failed: \`CGO_ENABLED=0 GOBIN=${binDir} go install ${target}\` ` +
      `exited with ${code} after ${Math.round((Date.now() - started) / 1000)} s. ${hint} ` +
      `Or set RUNFLEET_TEMPORAL_BIN to an existing temporal CLI ${TEMPORAL_CLI_VERSION}.\n${output}`,
  );
}
