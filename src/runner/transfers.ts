/**
 * What a task gets from the object store before its first step and leaves there after its last:
 * artifacts (paths of its workspace, archived when its steps succeeded, restored into the
 * workspaces of the tasks that name it in `artifacts_from`) and a cache (paths restored under a
 * key scoped to the run's group, saved after the steps when the key was not there). Archives are
 * made and unpacked by `./archive.ts`; restores run as the task's own user.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { backoff } from '../backoff';
import { RunfleetError } from '../errors';
import type { ObjectStore } from '../store/object-store';
import { cacheKey, packFiles, unpackArchive } from './archive';
import type { TaskUser } from './driver';

/** Where a run's artifacts are kept. */
export function artifactsPrefix(runId: string): string {
  return `artifacts/${runId}/`;
}

const ARCHIVE_SUFFIX = '.tar.gz';

/** Where a task's artifacts are kept (the last attempt's replace an earlier one's). */
export function artifactKey(runId: string, task: string): string {
  return `${artifactsPrefix(runId)}${encodeURIComponent(task)}${ARCHIVE_SUFFIX}`;
}

/** The task whose artifacts a key of `artifactsPrefix(runId)` holds, or null for another object. */
export function artifactTask(runId: string, key: string): string | null {
  const prefix = artifactsPrefix(runId);
  if (!key.startsWith(prefix) || !key.endsWith(ARCHIVE_SUFFIX)) return null;
  const name = key.slice(prefix.length, -ARCHIVE_SUFFIX.length);
  if (name.includes('/')) return null;
  try {
    return decodeURIComponent(name);
  } catch {
    return null; // not a name this layout wrote (a hostile runner's object)
  }
}

/** Where a cache is kept: under the run's group (`run/<group>/<id>`), shared by its runs. */
export function cacheObjectKey(runId: string, key: string): string {
  const group = runId.split('/').slice(1, -1).join('/');
  return `caches/${group}/${key}.tar.gz`;
}

/** An upload that fails is tried again for about this long (the task's outcome waits for it). */
const UPLOAD_TRY_MS = 60_000;

export interface TransferContext {
  store: ObjectStore;
  /** A folder of the runner's for archives on their way (removed after use). */
  tmpDir: string;
  runId: string;
  task: string;
  workspace: string;
  /** A line for the task's log (`==> ...`). */
  note: (line: string) => void;
}

export interface CacheSpec {
  key: string;
  paths: string[];
}

/** What `restore` found: the cache key it used and whether the store had it. */
export interface Restored {
  cache: { key: string; hit: boolean } | null;
}

/** Before the first step: the artifacts of `from`, then the cache. */
export async function restore(
  ctx: TransferContext,
  opts: { from: string[]; cache?: CacheSpec; user: TaskUser },
): Promise<Restored> {
  for (const from of opts.from) {
    const file = await download(ctx, artifactKey(ctx.runId, from));
    if (!file) {
      throw new RunfleetError(
        'TaskRefused',
        `the artifacts of task "${from}" are not in the object store (${ctx.store.where}): it did not store them`,
      );
    }
    try {
      const { files } = await unpackArchive({
        archive: file,
        root: ctx.workspace,
        ...(opts.user ? { user: opts.user } : {}),
      });
      ctx.note(`==> artifacts of ${from}: ${files} entries restored`);
    } finally {
      rmSync(file, { force: true });
    }
  }
  if (!opts.cache) return { cache: null };
  // After the artifacts: the key may hash a file one of them brought (a lock file).
  const key = cacheKey(opts.cache.key, ctx.workspace);
  const file = await download(ctx, cacheObjectKey(ctx.runId, key));
  if (!file) {
    ctx.note(`==> cache ${key}: not in the store (saved after the steps if they succeed)`);
    return { cache: { key, hit: false } };
  }
  try {
    const { files } = await unpackArchive({
      archive: file,
      root: ctx.workspace,
      ...(opts.user ? { user: opts.user } : {}),
    });
    ctx.note(`==> cache ${key}: ${files} entries restored`);
  } finally {
    rmSync(file, { force: true });
  }
  return { cache: { key, hit: true } };
}

/** An archive made from a task's workspace, waiting in a file of the runner's to be stored. */
export interface Packed {
  what: string;
  key: string;
  file: string;
  files: number;
  bytes: number;
}

/**
 * After steps that succeeded, before the driver takes the workspace back and frees the task's
 * user: its artifacts, and the cache when the store did not have its key, archived as that user
 * (tar reads with the task's rights only, whatever another task may swap in the tree meanwhile).
 * A failure is noted in the log; the task's outcome stands.
 */
export async function pack(
  ctx: TransferContext,
  opts: { artifacts?: string[]; cache?: { key: string; paths: string[] }; user: TaskUser },
): Promise<Packed[]> {
  const wanted: { what: string; key: string; patterns: string[] }[] = [];
  if (opts.artifacts)
    wanted.push({ what: 'artifacts', key: artifactKey(ctx.runId, ctx.task), patterns: opts.artifacts });
  if (opts.cache)
    wanted.push({
      what: `cache ${opts.cache.key}`,
      key: cacheObjectKey(ctx.runId, opts.cache.key),
      patterns: opts.cache.paths,
    });
  const packed: Packed[] = [];
  for (const w of wanted) {
    const file = tmpFile(ctx);
    try {
      const made = await packFiles({
        root: ctx.workspace,
        patterns: w.patterns,
        dest: file,
        ...(opts.user ? { user: opts.user } : {}),
      });
      packed.push({ what: w.what, key: w.key, file, ...made });
    } catch (err) {
      rmSync(file, { force: true });
      ctx.note(`==> ${w.what}: not stored: ${(err as Error).message}`);
    }
  }
  return packed;
}

/** Stores what `pack` made, trying again for a minute; the files are removed either way. */
export async function upload(ctx: TransferContext, archives: Packed[]): Promise<void> {
  for (const a of archives) {
    try {
      const since = Date.now();
      for await (const { attempt, delayMs } of backoff({ initialMs: 1_000, maxMs: 10_000 })) {
        try {
          await ctx.store.putFile(a.key, a.file);
          ctx.note(
            `==> ${a.what}: ${a.files} files (${a.bytes} bytes) stored${attempt > 1 ? ` after ${attempt} tries` : ''}`,
          );
          break;
        } catch (err) {
          if (Date.now() - since + delayMs > UPLOAD_TRY_MS) {
            ctx.note(`==> ${a.what}: not stored: ${(err as Error).message}`);
            break;
          }
          ctx.note(`==> ${a.what}: upload failed (${(err as Error).message}); trying again in ${delayMs / 1000}s`);
        }
      }
    } finally {
      rmSync(a.file, { force: true });
    }
  }
}

/** The object at `key` in a file of the runner's, or null when the store has none. */
async function download(ctx: TransferContext, key: string): Promise<string | null> {
  const file = tmpFile(ctx);
  try {
    return (await ctx.store.getFile(key, file)) ? file : null;
  } catch (err) {
    rmSync(file, { force: true });
    throw err;
  }
}

function tmpFile(ctx: TransferContext): string {
  mkdirSync(ctx.tmpDir, { recursive: true, mode: 0o700 });
  return join(ctx.tmpDir, `${randomBytes(8).toString('hex')}.tar.gz`);
}
