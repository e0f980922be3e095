/**
 * Packing and unpacking a task's files (artifacts, caches) with the system GNU tar, and the keys
 * caches are stored under. Paths come from the task (patterns, archive members, file names), so
 * nothing here follows a link out of the root: the walk never follows symlinks, tar runs as the
 * task's user when there is one (its permissions apply to what is read and written), and an
 * archive is read and written by this process through pipes, so that user never holds the file.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { RunfleetError } from '../errors';

const TAR = '/usr/bin/tar';
const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv', '/sbin/setpriv'];
/** Entries a walk visits at most: a workspace past this is refused, not walked for minutes. */
const MAX_ENTRIES = 100_000;
/** A listing (one line per member) past this is refused: an archive of millions of entries. */
const MAX_LISTING = 32 * 1024 * 1024;
/** No TAR_OPTIONS from our environment, and plain ASCII messages and quoting. */
const TAR_ENV = { PATH: '/usr/bin:/bin', LC_ALL: 'C' };

type User = { uid: number; gid: number };
type Compiled = { whole: RegExp; segments: (RegExp | '**')[] };

function segmentSource(seg: string): string {
  return seg.replace(/[\\^$.|?*+()[\]{}]/g, (c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : `\\${c}`));
}

function compile(pattern: string): Compiled {
  // Empty and `.` segments dropped (`dist/` is `dist`), repeated `**` collapsed; none left is `**`.
  const kept = pattern.split('/').filter((s, i, all) => s !== '' && s !== '.' && !(s === '**' && all[i - 1] === '**'));
  const segs = kept.length === 0 ? ['**'] : kept;
  let source = '';
  segs.forEach((seg, i) => {
    const last = i === segs.length - 1;
    if (seg === '**') source += last ? (i === 0 ? '.*' : '(?:/.*)?') : `${i === 0 ? '' : '/'}(?:[^/]+/)*`;
    else source += (i === 0 || segs[i - 1] === '**' ? '' : '/') + segmentSource(seg);
  });
  const segments = segs.map((s) => (s === '**' ? '**' : new RegExp(`^${segmentSource(s)}$`)));
  return { whole: new RegExp(`^${source}$`), segments };
}

/** A glob relative to a root as an anchored expression: `**` any segments (none too), `*` and `?` within one. */
export function globToRegExp(pattern: string): RegExp {
  return compile(pattern).whole;
}

/** Throws `InvalidArgument` naming the pattern when it could reach outside its root, or is unusable. */
export function checkPattern(pattern: string): void {
  const problems: [boolean, string][] = [
    [pattern === '', 'it is empty'],
    [pattern.length > 512, 'it is longer than 512 characters'],
    [pattern.startsWith('/'), 'it is absolute'],
    [pattern.split('/').includes('..'), 'it climbs out with ".."'],
    [/[\0\\]/.test(pattern), 'it holds a NUL or a backslash'],
  ];
  const problem = problems.find(([bad]) => bad)?.[1];
  if (problem) throw new RunfleetError('InvalidArgument', `pattern ${shown(pattern)} refused: ${problem}`);
}

/** Whether something below directory `dir` (its segments) could match: the walk skips the rest. */
function mayContain(p: Compiled, dir: string[]): boolean {
  for (let i = 0; i < dir.length; i++) {
    const seg = p.segments[i];
    if (seg === '**') return true;
    if (!seg?.test(dir[i] as string)) return false;
  }
  return dir.length < p.segments.length;
}

/**
 * The files and symlinks below `root` that a pattern matches or that lie below a directory one
 * matches, as sorted relative paths. Symlinks are listed as links and never entered; fifos,
 * sockets and devices are left out. `TaskRefused` past MAX_ENTRIES visited entries.
 */
export function selectFiles(root: string, patterns: string[]): string[] {
  if (!lstatSync(root, { throwIfNoEntry: false })?.isDirectory()) {
    throw new RunfleetError('TaskRefused', `${shown(root)} is not a directory: nothing to select in it`);
  }
  const compiled = patterns.map(compile);
  const matches = (rel: string) => compiled.some((p) => p.whole.test(rel));
  const found: string[] = [];
  let visited = 0;
  const stack: { rel: string; all: boolean }[] = [{ rel: '', all: false }];
  while (stack.length > 0) {
    const { rel: dir, all } = stack.pop() as { rel: string; all: boolean };
    for (const name of readdirSync(join(root, dir))) {
      if (++visited > MAX_ENTRIES) {
        throw new RunfleetError('TaskRefused', `more than ${MAX_ENTRIES} entries below ${shown(root)} to walk`);
      }
      const rel = dir === '' ? name : `${dir}/${name}`;
      const stat = lstatSync(join(root, rel), { throwIfNoEntry: false }); // undefined: gone meanwhile
      const selected = all || matches(rel);
      if (stat?.isDirectory()) {
        if (selected || compiled.some((p) => mayContain(p, rel.split('/')))) stack.push({ rel, all: selected });
      } else if ((stat?.isFile() || stat?.isSymbolicLink()) && selected) {
        found.push(rel);
      }
    }
  }
  return found.sort();
}

/**
 * Writes a gzip tar of what `patterns` select below `root` to `dest` (replaced whole, or left
 * untouched on failure). With `user`, tar reads the files as that user, so a file the task could
 * not read fails the pack. The names go to tar's stdin and the archive comes from its stdout.
 */
export async function packFiles(opts: {
  root: string;
  patterns: string[];
  dest: string;
  user?: User;
}): Promise<{ files: number; bytes: number }> {
  for (const pattern of opts.patterns) checkPattern(pattern);
  const files = selectFiles(opts.root, opts.patterns);
  const partial = `${opts.dest}.partial-${randomBytes(6).toString('hex')}`;
  const out = openSync(partial, 'wx', 0o600);
  try {
    // --null reads names verbatim (a name starting with `-` is no option, `\n` no escape).
    const args = ['--create', '--gzip', '--file=-', '--no-recursion', '--null', '--verbatim-files-from'];
    args.push('--no-unquote', '--files-from=-');
    await runTar(args, opts.user, Buffer.from(files.map((f) => `${f}\0`).join('')), out, opts.root);
    renameSync(partial, opts.dest);
  } finally {
    closeSync(out);
    rmSync(partial, { force: true });
  }
  return { files: files.length, bytes: statSync(opts.dest).size };
}

/**
 * Extracts `archive` into `root` (as `user` when given). GNU tar itself skips members with `..`,
 * strips a leading `/` (and any prefix up to a `../` in hard link targets), and extracts a
 * symlink member as a placeholder until the end, so a later member is never written through it.
 * What it does follow is a symlink already in `root`: a member below one is refused here first.
 * Owners and modes of the archive are not restored (umask applies), nor are those of `root`.
 * `TaskRefused` when tar fails: members it could extract before that stay.
 */
export async function unpackArchive(opts: { archive: string; root: string; user?: User }): Promise<{ files: number }> {
  const list = ['--list', '--verbose', '--gzip', '--file=-', '--numeric-owner', '--quoting-style=c'];
  const listing = await runTar(list, opts.user, { file: opts.archive });
  const lines = listing.split('\n').filter((l) => l.includes('"'));
  refuseLinkedPaths(opts.root, lines);
  const args = ['--extract', '--gzip', '--file=-', '--no-same-owner', '--no-same-permissions', '--no-overwrite-dir'];
  await runTar(args, opts.user, { file: opts.archive }, undefined, opts.root);
  return { files: lines.length };
}

/**
 * A cache key from its template: `{{ hash PATH }}` becomes the first 16 hex digits of a SHA-256
 * over the regular files PATH (a glob below `root`) selects, names and contents (no file: the
 * hash of nothing). Any other expression, or a key that is not a plain name, is `InvalidArgument`.
 */
export function cacheKey(template: string, root: string): string {
  const key = template.replace(/\{\{(.*?)\}\}/g, (_, expr: string) => {
    const path = /^\s*hash\s+(\S+)\s*$/.exec(expr)?.[1];
    if (path === undefined) {
      const what = `cache key ${shown(template)}: unknown expression ${shown(`{{${expr}}}`)}`;
      throw new RunfleetError('InvalidArgument', `${what}; only {{ hash PATH }} is known`);
    }
    checkPattern(path);
    const hash = createHash('sha256');
    for (const rel of selectFiles(root, [path])) {
      const digest = fileDigest(join(root, rel));
      if (digest !== null) hash.update(`${rel}\0${digest}\n`);
    }
    return hash.digest('hex').slice(0, 16);
  });
  if (!/^[A-Za-z0-9._-]{1,200}$/.test(key)) {
    throw new RunfleetError('InvalidArgument', `cache key ${shown(key)} refused: 1 to 200 of A-Z a-z 0-9 . _ - only`);
  }
  return key;
}

/** SHA-256 of a regular file, null for anything else; a symlink is not followed, a fifo not waited on. */
function fileDigest(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null; // a symlink (ELOOP), or gone meanwhile
  }
  try {
    if (!fstatSync(fd).isFile()) return null;
    const hash = createHash('sha256');
    const buf = Buffer.alloc(64 * 1024);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) hash.update(buf.subarray(0, n));
    return hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs tar (through setpriv as `user` when given) reading `stdin` (bytes, or a file this process
 * opens) and writing `stdout` (a file descriptor; none: stdout is returned). A non-zero exit is
 * `TaskRefused` with the end of tar's stderr.
 */
async function runTar(
  args: string[],
  user: User | undefined,
  stdin: Buffer | { file: string },
  stdout?: number,
  cwd = '/',
) {
  let cmd = TAR;
  if (user) {
    const setpriv = SETPRIV_PATHS.find((p) => existsSync(p));
    if (!setpriv)
      throw new RunfleetError('Internal', 'setpriv (util-linux) is missing: cannot run tar as the task user');
    cmd = setpriv;
    args = [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--no-new-privs', TAR, ...args];
  }
  const input = Buffer.isBuffer(stdin) ? 'pipe' : openSync(stdin.file, 'r');
  // The child enters `cwd` before it becomes the user: a workspace whose parents the task user
  // may not pass (a state dir of 0700) is still its to write. The child has its own `input`.
  const child = spawn(cmd, args, { cwd, env: TAR_ENV, stdio: [input, stdout ?? 'pipe', 'pipe'] });
  if (typeof input === 'number') closeSync(input);
  let out = '';
  let err = '';
  return new Promise<string>((resolve, reject) => {
    child.on('error', (e) => reject(new RunfleetError('Internal', `cannot run ${cmd}: ${e.message}`)));
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.length > MAX_LISTING) child.kill('SIGKILL');
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err = (err + chunk).slice(-4096)));
    child.stdin?.on('error', () => {}); // EPIPE when tar exits early: its exit status tells why
    if (Buffer.isBuffer(stdin)) child.stdin?.end(stdin);
    child.on('close', (code, signal) => {
      if (code === 0) return resolve(out);
      const why = out.length > MAX_LISTING ? 'more than 32 MiB of listing' : err.trim().slice(-500);
      reject(new RunfleetError('TaskRefused', `tar failed (${code === null ? signal : `exit ${code}`}): ${why}`));
    });
  });
}

/**
 * Refuses an archive (lines of `tar -tv --quoting-style=c`) with a member, or a hard link's
 * target, below a symlink that is in `root` already: tar would write (or link) through it.
 */
function refuseLinkedPaths(root: string, lines: string[]): void {
  const isLink = new Map<string, boolean>();
  const check = (path: string, self: boolean) => {
    // Where tar writes (or links to): after the last `..` segment, without empty and `.` ones.
    const segs = path.split('/').filter((s) => s !== '' && s !== '.');
    const parts = segs.slice(segs.lastIndexOf('..') + 1);
    for (let i = 1; i <= parts.length - (self ? 0 : 1); i++) {
      const rel = parts.slice(0, i).join('/');
      if (!isLink.has(rel)) isLink.set(rel, !!lstatSync(join(root, rel), { throwIfNoEntry: false })?.isSymbolicLink());
      if (isLink.get(rel)) {
        const what = `archive member ${shown(path)} would go through the symlink ${shown(rel)}`;
        throw new RunfleetError('TaskRefused', `${what} in ${shown(root)}`);
      }
    }
  };
  for (const line of lines) {
    const [name = '', target = ''] = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => unescapeC(m[1] as string));
    check(name, false);
    if (line.startsWith('h')) check(target, true); // a hard link: its target too
  }
}

/** A name tar printed with --quoting-style=c (LC_ALL=C: ASCII, other bytes in octal) as UTF-8. */
function unescapeC(text: string): string {
  const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
  const bytes = text.replace(/\\([0-7]{3}|.)/g, (_, e: string) =>
    e.length === 3 ? String.fromCharCode(parseInt(e, 8)) : (simple[e] ?? e),
  );
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

/** A value from the task, quoted with its control characters escaped, and not too long to log. */
function shown(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}
