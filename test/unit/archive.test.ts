/**
 * Packing and unpacking a task's files with the real GNU tar (`src/runner/archive.ts`): glob
 * semantics, refused patterns, a walk that never follows links, round trips, hostile archives
 * that must leave nothing outside the root, tar as a task user (when the tests run as root, as
 * in CI and the dev container), and cache keys.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheKey, checkPattern, globToRegExp, packFiles, selectFiles, unpackArchive } from '../../src/runner/archive';
import { RunfleetError } from '../../src/errors';

const isRoot = process.getuid?.() === 0;
const USER = { uid: 100_000_500, gid: 100_000_500 };
/** sha256('') cut to 16: the hash of no file. */
const EMPTY_HASH = 'e3b0c44298fc1c14';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'runfleet-archive-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(path: string, content: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  chmodSync(path, mode);
}

function tar(...args: string[]): void {
  execFileSync('/usr/bin/tar', args, { stdio: ['ignore', 'ignore', 'ignore'] });
}

async function refusal(promise: Promise<unknown>): Promise<RunfleetError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RunfleetError);
  return err as RunfleetError;
}

describe('globToRegExp', () => {
  it.each([
    ['dist/**', 'dist/a', true],
    ['dist/**', 'dist/x/y', true],
    ['dist/**', 'distx/a', false],
    ['**/*.js', 'a.js', true],
    ['**/*.js', 'x/y/a.js', true],
    ['**/*.js', 'a.ts', false],
    ['*.js', 'x/a.js', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'ab', false],
    ['a?c', 'abc', true],
    ['a?c', 'a/c', false],
    ['a.b', 'axb', false],
    ['(x)+[y]{1}$', '(x)+[y]{1}$', true],
    ['node_modules', 'node_modules', true],
    ['node_modules', 'node_modules/x', false],
    ['node_modules', 'a/node_modules', false],
    ['**', 'any/thing', true],
    ['dist/', 'dist', true],
  ])('%s against %s: %s', (pattern, path, expected) => {
    expect(globToRegExp(pattern).test(path)).toBe(expected);
  });
});

describe('checkPattern', () => {
  it.each([
    ['', 'it is empty'],
    ['/etc/passwd', 'it is absolute'],
    ['../x', 'it climbs out with ".."'],
    ['a/../../b', 'it climbs out with ".."'],
    ['a\0b', 'it holds a NUL or a backslash'],
    ['a\\b', 'it holds a NUL or a backslash'],
    ['x'.repeat(513), 'it is longer than 512 characters'],
  ])('refuses %j', (pattern, why) => {
    expect(() => checkPattern(pattern)).toThrow(RunfleetError);
    expect(() => checkPattern(pattern)).toThrow(`pattern ${JSON.stringify(pattern.slice(0, 200)).slice(0, -1)}`);
    expect(() => checkPattern(pattern)).toThrow(why);
    try {
      checkPattern(pattern);
    } catch (err) {
      expect((err as RunfleetError).code).toBe('InvalidArgument');
    }
  });

  it('takes ordinary globs', () => {
    for (const p of ['dist/**', '**/*.js', 'node_modules', 'a..b/c', '.cache/x?'])
      expect(() => checkPattern(p)).not.toThrow();
  });
});

describe('selectFiles', () => {
  let root: string;
  let outside: string;
  beforeEach(() => {
    root = join(dir, 'root');
    outside = join(dir, 'outside');
    write(join(outside, 'secret.txt'), 'secret');
    write(join(outside, 'x.js'), 'outside');
    write(join(root, 'a.txt'), 'a');
    write(join(root, 'src', 'x.js'), 'x');
    write(join(root, 'src', 'y.ts'), 'y');
    write(join(root, 'node_modules', 'p', 'index.js'), 'p');
    mkdirSync(join(root, 'node_modules', '.bin'));
    symlinkSync('../p/index.js', join(root, 'node_modules', '.bin', 'p'));
    symlinkSync(outside, join(root, 'out'));
    execFileSync('mkfifo', [join(root, 'src', 'fifo.js')]);
  });

  it('selects by glob, everything below a matched directory, links as links', () => {
    expect(selectFiles(root, ['**/*.js'])).toEqual(['node_modules/p/index.js', 'src/x.js']);
    expect(selectFiles(root, ['node_modules'])).toEqual(['node_modules/.bin/p', 'node_modules/p/index.js']);
    expect(selectFiles(root, ['src/*.ts', 'a.txt'])).toEqual(['a.txt', 'src/y.ts']);
    expect(selectFiles(root, ['nothing/**'])).toEqual([]);
  });

  it('never follows a symlink to a directory outside the root', () => {
    // The link itself when matched; nothing of its target, whatever the pattern.
    expect(selectFiles(root, ['out', 'out/**', '**/secret.txt'])).toEqual(['out']);
    expect(selectFiles(root, ['**'])).toEqual([
      'a.txt',
      'node_modules/.bin/p',
      'node_modules/p/index.js',
      'out',
      'src/x.js',
      'src/y.ts',
    ]);
  });

  it('refuses a root that is not a directory', () => {
    expect(() => selectFiles(join(dir, 'missing'), ['**'])).toThrow(/is not a directory/);
    expect(() => selectFiles(join(root, 'out'), ['**'])).toThrow(/is not a directory/);
  });

  it('stops past 100000 entries', () => {
    const big = join(dir, 'big');
    mkdirSync(big);
    for (let i = 0; i <= 100_000; i++) writeFileSync(join(big, String(i)), '');
    expect(() => selectFiles(big, ['none'])).toThrow(/more than 100000 entries/);
    // A directory no pattern can reach into is not walked.
    expect(selectFiles(dir, ['root/a.txt'])).toEqual(['root/a.txt']);
  });
});

describe('packFiles and unpackArchive', () => {
  let root: string;
  beforeEach(() => {
    root = join(dir, 'root');
    write(join(root, 'a.txt'), 'hello');
    write(join(root, 'bin', 'run.sh'), '#!/bin/sh\necho hi\n', 0o755);
    write(join(root, 'sub', 'deep', 'file'), 'deep');
    write(join(root, 'skip.log'), 'not packed');
    symlinkSync('a.txt', join(root, 'link'));
  });

  it('round-trips contents, symlinks and modes', async () => {
    const dest = join(dir, 'a.tgz');
    const packed = await packFiles({ root, patterns: ['*.txt', 'bin', 'sub/**', 'link'], dest });
    expect(packed).toEqual({ files: 4, bytes: statSync(dest).size });
    expect(packed.bytes).toBeGreaterThan(0);
    expect(readdirSync(dir).sort()).toEqual(['a.tgz', 'root']); // no list or partial file left

    const into = join(dir, 'into');
    mkdirSync(into);
    expect(await unpackArchive({ archive: dest, root: into })).toEqual({ files: 4 });
    expect(readFileSync(join(into, 'a.txt'), 'utf8')).toBe('hello');
    expect(readFileSync(join(into, 'sub', 'deep', 'file'), 'utf8')).toBe('deep');
    expect(lstatSync(join(into, 'link')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(into, 'link'))).toBe('a.txt');
    expect(statSync(join(into, 'bin', 'run.sh')).mode & 0o555).toBe(0o555);
    expect(statSync(join(into, 'a.txt')).mode & 0o444).toBe(0o444);
    expect(existsSync(join(into, 'skip.log'))).toBe(false);
  });

  it('writes a valid empty archive when nothing is selected', async () => {
    const dest = join(dir, 'empty.tgz');
    expect((await packFiles({ root, patterns: ['nothing/**'], dest })).files).toBe(0);
    expect(execFileSync('/usr/bin/tar', ['-tzf', dest], { encoding: 'utf8' })).toBe('');
    const into = join(dir, 'into');
    mkdirSync(into);
    expect(await unpackArchive({ archive: dest, root: into })).toEqual({ files: 0 });
    expect(readdirSync(into)).toEqual([]);
  });

  it('packs names tar could take for options or escapes as they are', async () => {
    write(join(root, '--remove-files'), 'dash');
    write(join(root, 'back\\nslash'), 'slash');
    write(join(root, 'new\nline'), 'line');
    const dest = join(dir, 'odd.tgz');
    expect((await packFiles({ root, patterns: ['--remove-files', 'back*', 'new*'], dest })).files).toBe(3);
    expect(readFileSync(join(root, '--remove-files'), 'utf8')).toBe('dash');
    const into = join(dir, 'into');
    mkdirSync(into);
    expect(await unpackArchive({ archive: dest, root: into })).toEqual({ files: 3 });
    expect(readdirSync(into).sort()).toEqual(['--remove-files', 'back\\nslash', 'new\nline']);
  });

  it('refuses a bad pattern before writing anything', async () => {
    const dest = join(dir, 'bad.tgz');
    const err = await refusal(packFiles({ root, patterns: ['ok', '../x'], dest }));
    expect(err.code).toBe('InvalidArgument');
    expect(existsSync(dest)).toBe(false);
  });

  it('extracts nothing outside the root from a hostile archive', async () => {
    const outside = join(dir, 'outside');
    const staging = join(dir, 'staging');
    mkdirSync(outside);
    write(join(staging, 'a'), 'a');
    write(join(staging, 'b'), 'b');
    write(join(staging, 'c'), 'c');
    write(join(staging, 'd'), 'd');
    symlinkSync(outside, join(staging, 'link'));
    // -P keeps what --transform makes: `../escape`, an absolute name, and `link/evil` after a
    // member `link` that is a symlink out of the root.
    const evil = join(dir, 'evil.tgz');
    const transform = `s,^a$,../escape,;s,^b$,${outside}/abs,;s,^c$,link/evil,`;
    tar('-czf', evil, '-P', '-C', staging, `--transform=${transform}`, 'link', 'a', 'b', 'c', 'd');

    const into = join(dir, 'into');
    mkdirSync(into);
    // GNU tar skips `../escape` (a member with `..`), extracts `/…/abs` below the root (leading
    // `/` stripped) and fails `link/evil` (the symlink is a plain placeholder file until the end):
    // it exits 2, so unpackArchive fails with TaskRefused; the harmless members stay extracted.
    const err = await refusal(unpackArchive({ archive: evil, root: into }));
    expect(err.code).toBe('TaskRefused');
    expect(err.message).toMatch(/Member name contains '\.\.'/);
    expect(err.message).toMatch(/link\/evil/);
    expect(existsSync(join(dir, 'escape'))).toBe(false);
    expect(existsSync(join(outside, 'abs'))).toBe(false);
    expect(existsSync(join(outside, 'evil'))).toBe(false);
    expect(readdirSync(outside)).toEqual([]);
    expect(readFileSync(join(into, outside.slice(1), 'abs'), 'utf8')).toBe('b');
    expect(readFileSync(join(into, 'd'), 'utf8')).toBe('d');
    expect(readlinkSync(join(into, 'link'))).toBe(outside);
  });

  it('refuses members, and hard link targets, below a symlink already in the root', async () => {
    const outside = join(dir, 'outside');
    write(join(outside, 'secret'), 'secret');
    const into = join(dir, 'into');
    mkdirSync(into);
    symlinkSync(outside, join(into, 'link'));

    // A plain member `link/evil`: tar itself would write it through the existing link.
    const staging = join(dir, 'staging');
    write(join(staging, 'c'), 'c');
    const through = join(dir, 'through.tgz');
    tar('-czf', through, '-C', staging, '--transform=s,^c$,link/evil,', 'c');
    const err = await refusal(unpackArchive({ archive: through, root: into }));
    expect(err.code).toBe('TaskRefused');
    expect(err.message).toMatch(/"link\/evil" would go through the symlink "link"/);
    expect(existsSync(join(outside, 'evil'))).toBe(false);

    // A lone hard link `h` to `link/secret` (its target member deleted): tar would link the
    // outside file into the root.
    execFileSync('ln', [join(staging, 'c'), join(staging, 'h')]);
    const plain = join(dir, 'hard.tar');
    tar('-cf', plain, '-C', staging, '--transform=s,^c$,link/secret,', 'c', 'h');
    tar('--delete', '-f', plain, 'link/secret');
    execFileSync('gzip', [plain]);
    const hardErr = await refusal(unpackArchive({ archive: `${plain}.gz`, root: into }));
    expect(hardErr.message).toMatch(/"link\/secret" would go through the symlink "link"/);
    expect(existsSync(join(into, 'h'))).toBe(false);
    expect(statSync(join(outside, 'secret')).nlink).toBe(1);
  });

  it('refuses what is not a gzip tar', async () => {
    const bogus = join(dir, 'bogus.tgz');
    writeFileSync(bogus, 'not an archive');
    const err = await refusal(unpackArchive({ archive: bogus, root }));
    expect(err.code).toBe('TaskRefused');
    expect(err.message).toMatch(/^tar failed \(exit 2\): .*gzip/s);
  });

  describe.skipIf(!isRoot)('as a task user', () => {
    beforeEach(() => {
      chmodSync(dir, 0o755); // the user passes through to root; neither is its to write
      chmodSync(root, 0o755);
    });

    it('packs what the user can read, fails on what it cannot', async () => {
      const dest = join(dir, 'user.tgz');
      expect(await packFiles({ root, patterns: ['a.txt'], dest, user: USER })).toMatchObject({ files: 1 });
      expect(execFileSync('/usr/bin/tar', ['-tzf', dest], { encoding: 'utf8' })).toBe('a.txt\n');

      write(join(root, 'secret'), 'root only', 0o600);
      const denied = join(dir, 'denied.tgz');
      const err = await refusal(packFiles({ root, patterns: ['a.txt', 'secret'], dest: denied, user: USER }));
      expect(err.code).toBe('TaskRefused');
      expect(err.message).toMatch(/secret: .*Permission denied/);
      expect(existsSync(denied)).toBe(false);
      expect(readdirSync(dir).sort()).toEqual(['root', 'user.tgz']);
    });

    it('unpacks only where the user may write', async () => {
      const dest = join(dir, 'a.tgz');
      await packFiles({ root, patterns: ['a.txt', 'sub'], dest }); // 0600, root's: read by us, not the user
      const closed = join(dir, 'closed');
      mkdirSync(closed, { mode: 0o755 });
      const err = await refusal(unpackArchive({ archive: dest, root: closed, user: USER }));
      expect(err.code).toBe('TaskRefused');
      expect(err.message).toMatch(/Permission denied/);
      expect(readdirSync(closed)).toEqual([]);

      const own = join(dir, 'own');
      mkdirSync(own, { mode: 0o700 });
      chownSync(own, USER.uid, USER.gid);
      expect(await unpackArchive({ archive: dest, root: own, user: USER })).toEqual({ files: 2 });
      expect(statSync(join(own, 'sub', 'deep', 'file')).uid).toBe(USER.uid);
      expect(statSync(own).mode & 0o777).toBe(0o700);
    });

    it("unpacks into the user's own folder below one it may not pass (a runner's 0700 state dir)", async () => {
      const dest = join(dir, 'b.tgz');
      await packFiles({ root, patterns: ['a.txt'], dest });
      const state = join(dir, 'state');
      mkdirSync(state, { mode: 0o700 });
      const own = join(state, 'work');
      mkdirSync(own, { mode: 0o700 });
      chownSync(own, USER.uid, USER.gid);
      expect(await unpackArchive({ archive: dest, root: own, user: USER })).toEqual({ files: 1 });
      expect(statSync(join(own, 'a.txt')).uid).toBe(USER.uid);
    });
  });
});

describe('cacheKey', () => {
  let root: string;
  beforeEach(() => {
    root = join(dir, 'root');
    write(join(root, 'package-lock.json'), '{"v":1}');
  });

  it('hashes the files a path selects, stably', () => {
    const key = cacheKey('deps-{{ hash package-lock.json }}', root);
    expect(key).toMatch(/^deps-[0-9a-f]{16}$/);
    expect(cacheKey('deps-{{ hash package-lock.json }}', root)).toBe(key);
    expect(cacheKey('deps-{{hash package-lock.json}}', root)).toBe(key);
    expect(cacheKey('deps-{{ hash *.json }}', root)).toBe(key);
    writeFileSync(join(root, 'package-lock.json'), '{"v":2}');
    expect(cacheKey('deps-{{ hash package-lock.json }}', root)).not.toBe(key);
    expect(cacheKey('plain-key_1.0', root)).toBe('plain-key_1.0');
  });

  it('gives the hash of nothing for no file, and skips symlinks', () => {
    expect(cacheKey('deps-{{ hash yarn.lock }}', root)).toBe(`deps-${EMPTY_HASH}`);
    symlinkSync('/etc/passwd', join(root, 'yarn.lock'));
    expect(cacheKey('deps-{{ hash yarn.lock }}', root)).toBe(`deps-${EMPTY_HASH}`);
  });

  it('refuses unknown expressions, bad paths and bad keys', () => {
    expect(() => cacheKey('x-{{ env HOME }}', root)).toThrow(/unknown expression "\{\{ env HOME \}\}"/);
    expect(() => cacheKey('x-{{ hash ../etc/passwd }}', root)).toThrow(/refused: it climbs out/);
    expect(() => cacheKey('bad key/{{ hash package-lock.json }}', root)).toThrow(
      /cache key "bad key\/[0-9a-f]{16}" refused/,
    );
    expect(() => cacheKey('', root)).toThrow(/cache key "" refused/);
    expect(() => cacheKey('x'.repeat(201), root)).toThrow(RunfleetError);
    try {
      cacheKey('x-{{ env HOME }}', root);
    } catch (err) {
      expect((err as RunfleetError).code).toBe('InvalidArgument');
    }
  });
});
