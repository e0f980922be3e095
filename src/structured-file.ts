/**
 * Reading the YAML or JSON files users hand to the CLI (run files, fleet files): one place for
 * the read errors and for YAML syntax errors as `line L, column C` problems. Node-only.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';
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

/** Parses YAML (a superset of JSON): the value, or one problem per syntax error. */
export function parseYamlText(text: string): { value: unknown; problems: SpecProblem[] } {
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
  return { value: problems.length > 0 ? undefined : (doc.toJS() as unknown), problems };
}
