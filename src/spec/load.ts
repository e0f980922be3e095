/**
 * Run files: YAML or JSON on disk, parsed and validated before anything starts. Every error is
 * a RunfleetError `InvalidRunSpec` whose message names the file and lists every problem.
 */
import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { RunfleetError } from '../errors';
import type { RunSpec } from './schema';
import { checkRunSpec, formatProblems, type SpecProblem } from './validate';

export interface LoadedRunSpec {
  /** Absolute path of the file read. */
  file: string;
  /** The file's content as parsed, before defaults: what is sent to the workflow. */
  input: unknown;
  /** The validated spec, with defaults filled in. */
  spec: RunSpec;
}

/** Reads, parses and validates a run file (`.yaml`/`.yml`, `.json`, or either by content). */
export async function loadRunSpecFile(path: string): Promise<LoadedRunSpec> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new RunfleetError('InvalidRunSpec', `cannot read run file ${path}: ${why}`);
  }
  const input = parseRunFileText(text, file);
  const checked = checkRunSpec(input);
  if (!checked.ok) {
    throw new RunfleetError('InvalidRunSpec', formatProblems(`invalid run file ${path}`, checked.problems), {
      file,
      problems: checked.problems,
    });
  }
  return { file, input, spec: checked.spec };
}

/** Parses a run file's text by the file's extension, or as JSON then YAML when it has none. */
export function parseRunFileText(text: string, file: string): unknown {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') return parseJson(text, file);
  if (ext === '.yaml' || ext === '.yml') return parseYaml(text, file);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Not JSON; YAML is a superset, so its error is the one worth showing.
    return parseYaml(text, file);
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw syntaxError(file, [{ path: '(file)', message: `not valid JSON: ${(err as Error).message}` }]);
  }
}

function parseYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw syntaxError(
      file,
      doc.errors.map((e) => {
        const at = e.linePos?.[0];
        // The first line of a YAML error is the message; the rest is a code excerpt.
        const message = e.message.split('\n')[0] ?? e.message;
        return {
          path: at ? `line ${at.line}, column ${at.col}` : '(file)',
          message: `YAML: ${message.replace(/ at line \d+, column \d+:?$/, '')}`,
        };
      }),
    );
  }
  return doc.toJS() as unknown;
}

function syntaxError(file: string, problems: SpecProblem[]): RunfleetError {
  return new RunfleetError('InvalidRunSpec', formatProblems(`cannot parse run file ${file}`, problems), {
    file,
    problems,
  });
}
