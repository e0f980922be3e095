/**
 * Reading the YAML or JSON files users hand to the CLI (run files, fleet files): one place for
 * the read errors and for YAML syntax errors as `line L, column C` problems. Node-only.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { parseDocument as ParseDocument } from 'yaml';
import { RunfleetError, type ErrorCode } from './errors';
import type { SpecProblem } from './spec/validate';

/** Reads a file's text; a missing or unreadable file is a `code` error naming it as `what`. */
export async function readUserFile(
  path: string,
  what: string,
  code: ErrorCode,
): Promise<{ file: string; text: string }> {
  const file = resolve(path);
  try {
    return { file, text: await readFile(file, 'utf8') };
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    const why = errno === 'ENOENT' ? 'no such file' : errno === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new RunfleetError(code, `cannot read ${what} ${path}: ${why}`);
  }
}

/**
 * Aliases one YAML document may expand (yaml's own default, said here): a file that needs more
 * is a "billion laughs" bomb, which would take the process's memory.
 */
export const MAX_YAML_ALIASES = 100;

/** Keys that reach an object's prototype when assigned or merged: refused in every file users give. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Parses YAML (a superset of JSON): the value, or one problem per syntax error. */
export function parseYamlText(text: string): { value: unknown; problems: SpecProblem[] } {
  // Loaded on use: yaml is a sixth of a CLI command's start-up, and most read no YAML.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parseDocument } = require('yaml') as { parseDocument: typeof ParseDocument };
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const problems = doc.errors.map((e) => {
    const at = e.linePos?.[0];
    // The first line of a YAML error is the message; the rest is a code excerpt.
    const message = e.message.split('\n')[0] ?? e.message;
    return {
      path: at ? `line ${at.line}, column ${at.col}` : '(file)',
      message: `YAML: ${message.replace(/ at line \d+, column \d+:?$/, '')}`,
    };
  });
  if (problems.length > 0) return { value: undefined, problems };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    // yaml throws a ReferenceError for an alias bomb: the file's fault, not ours.
    if (!(err instanceof ReferenceError)) throw err;
    return {
      value: undefined,
      problems: [
        { path: '(file)', message: `YAML: its aliases expand too far (more than ${MAX_YAML_ALIASES}): refused` },
      ],
    };
  }
  return checkKeys(value);
}

/** Parses JSON: the value, or the syntax error as a problem; prototype keys are refused as in YAML. */
export function parseJsonText(text: string): { value: unknown; problems: SpecProblem[] } {
  try {
    return checkKeys(JSON.parse(text) as unknown);
  } catch (err) {
    return { value: undefined, problems: [{ path: '(file)', message: `not valid JSON: ${(err as Error).message}` }] };
  }
}

function checkKeys(value: unknown): { value: unknown; problems: SpecProblem[] } {
  const path = forbiddenKeyPath(value);
  if (path === null) return { value, problems: [] };
  return {
    value: undefined,
    problems: [{ path, message: "this key is not allowed (it would change an object's prototype)" }],
  };
}

/**
 * The path of the first `__proto__`, `constructor` or `prototype` key in a parsed value
 * (`tasks[0].env.__proto__`), or null. JSON.parse and yaml make them own keys; a later spread,
 * `Object.assign` or dotted-path set would turn them into a prototype change.
 */
export function forbiddenKeyPath(value: unknown, path = ''): string | null {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = forbiddenKeyPath(value[i], `${path}[${i}]`);
      if (found !== null) return found;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      const at = path ? `${path}.${key}` : key;
      if (FORBIDDEN_KEYS.has(key)) return at;
      const found = forbiddenKeyPath((value as Record<string, unknown>)[key], at);
      if (found !== null) return found;
    }
  }
  return null;
}
