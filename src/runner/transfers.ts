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
  return name.includes('/') ? null : decodeURIComponent(name);
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

/**
 * After steps that succeeded (the task's processes are gone: the tree no longer changes): its
 * artifacts, and the cache when the store did not have its key. A failure is noted in the log;
 * the task's outcome stands.
 */
export async function save(
  ctx: TransferContext,
  opts: { artifacts?: string[]; cache?: { key: string; paths: string[] } },
): Promise<void> {
  if (opts.artifacts) {
    await upload(ctx, 'artifacts', artifactKey(ctx.runId, ctx.task), opts.artifacts);
  }
  if (opts.cache) {
    await upload(ctx, `cache ${opts.cache.key}`, cacheObjectKey(ctx.runId, opts.cache.key), opts.cache.paths);
  }
}

async function upload(ctx: TransferContext, what: string, key: string, patterns: string[]): Promise<void> {
  const file = tmpFile(ctx);
  try {
    const packed = await packFiles({ root: ctx.workspace, patterns, dest: file });
    const since = Date.now();
    for await (const { attempt, delayMs } of backoff({ initialMs: 1_000, maxMs: 10_000 })) {
      try {
        await ctx.store.putFile(key, file);
        ctx.note(
          `==> ${what}: ${packed.files} files (${packed.bytes} bytes) stored${attempt > 1 ? ` after ${attempt} tries` : ''}`,
        );
        return;
      } catch (err) {
        if (Date.now() - since + delayMs > UPLOAD_TRY_MS) {
          ctx.note(`==> ${what}: not stored: ${(err as Error).message}`);
          return;
        }
        ctx.note(`==> ${what}: upload failed (${(err as Error).message}); trying again in ${delayMs / 1000}s`);
      }
    }
  } catch (err) {
    ctx.note(`==> ${what}: not stored: ${(err as Error).message}`);
  } finally {
    rmSync(file, { force: true });
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
