/**
 * Changegroup names and update tokens, on the client side.
 *
 * An update token is the versions of one or more changegroups as a client read them, in an
 * opaque string: `cg1.` and base64url JSON. Callers must not build or read it; it may change.
 */
import { RunfleetError } from '../errors';

const TOKEN_PREFIX = 'cg1.';
/** Readable in the Web UI as `changegroup/<name>`: a project, a branch, `project/42/main`. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,199}$/;

/** The name, or InvalidArgument when it cannot be a changegroup name. */
export function checkChangegroupName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new RunfleetError(
      'InvalidArgument',
      `changegroup "${name}" must start with a letter or digit and hold only letters, digits and _ . : / - (at most 200)`,
    );
  }
  return name;
}

/** Versions by changegroup name, as an opaque token. */
export function encodeUpdateToken(versions: Readonly<Record<string, number>>): string {
  const sorted = Object.fromEntries(Object.entries(versions).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return TOKEN_PREFIX + Buffer.from(JSON.stringify(sorted), 'utf8').toString('base64url');
}

/** The versions a token holds; InvalidArgument when it is not a token `getUpdateToken` made. */
export function decodeUpdateToken(token: string): Record<string, number> {
  const bad = () =>
    new RunfleetError(
      'InvalidArgument',
      'the update token is not valid; get one with `runfleet changegroup token NAME`',
    );
  if (!token.startsWith(TOKEN_PREFIX)) throw bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad();
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) throw bad();
  const out: Record<string, number> = {};
  for (const [name, version] of entries) {
    if (!NAME_RE.test(name) || typeof version !== 'number' || !Number.isInteger(version) || version < 0) throw bad();
    out[name] = version;
  }
  return out;
}
